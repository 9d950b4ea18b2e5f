package io.postcopy.migration.internal.channel;

import io.postcopy.migration.internal.destination.Destination;
import io.postcopy.migration.internal.Refused;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

/**
 * The channel tokens that live migrations of one listener announced on their main stream ({@code CHANNEL_TOKEN})
 * and that no channel has presented yet: a token proves which migration a postcopy-preempt channel belongs to, and
 * serves one channel. Announced and withdrawn from the migrations' stream threads, claimed by the listener's routing
 * threads (which wait here, as the token may be announced a moment after its channel connects); guarded by this.
 */
final class ChannelTokens {
    private record Announced(byte[] token, Destination migration) {}

    private final List<Announced> tokens = new ArrayList<>();

    /** A migration's CHANNEL_TOKEN. A token may serve one migration only. */
    synchronized void announce(byte[] token, Destination d) throws Refused {
        for (Announced a : tokens) {
            if (a.migration == d) throw new Refused("CHANNEL_TOKEN announced twice");
            if (MessageDigest.isEqual(a.token, token)) throw new Refused("CHANNEL_TOKEN already announced by another migration");
        }
        tokens.add(new Announced(token, d));
        notifyAll();
    }

    /** A paused migration's token is good for one more channel (the resumed source opens it again). */
    synchronized void reannounce(byte[] token, Destination d) {
        tokens.removeIf(a -> a.migration == d);
        tokens.add(new Announced(token, d));
        notifyAll();
    }

    /** The migration that announced {@code token}, taken off the list (one channel per token); null at the deadline. */
    synchronized Destination claim(byte[] token, long deadline) {
        for (;;) {
            for (int i = 0; i < tokens.size(); i++) {
                Announced a = tokens.get(i);
                // constant time: the comparison does not tell a stranger how much of a token it guessed
                if (MessageDigest.isEqual(a.token, token) && !a.migration.ending()) {
                    tokens.remove(i);
                    return a.migration;
                }
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) return null;
            try {
                wait(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
    }

    /** From a migration that has ended: its token is no longer good. */
    synchronized void ended(Destination d) {
        tokens.removeIf(a -> a.migration == d);
    }
}
