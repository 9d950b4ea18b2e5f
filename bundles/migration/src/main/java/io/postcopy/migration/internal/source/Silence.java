package io.postcopy.migration.internal.source;

import io.postcopy.codec.Command;
import io.postcopy.migration.MigrationState;
import java.io.IOException;

/**
 * Silence on a postcopy connection between our own ends: a connection that says nothing for {@code silenceMillis} is
 * lost, even with no reset or FIN (a partition), and the migration pauses.
 *
 * <p>Threads: the sender PINGs from its loop ({@link #heartbeat}) and restarts the clocks (the switch, a resume); the
 * return-path reader notes every message ({@link #heard}); the service's deadline thread {@link #watch}es.
 */
final class Silence {
    /** PING values from here on are heartbeats (QEMU's own use 1..5). */
    private static final int HEARTBEAT_PING = 0x48420000;

    private final Outgoing o;
    private volatile long lastHeardNanos = System.nanoTime();
    /** Sender only. */
    private long lastPingNanos;
    private int heartbeats;

    Silence(Outgoing o) {
        this.o = o;
    }

    /** The return-path reader got a message. */
    void heard() {
        lastHeardNanos = System.nanoTime();
    }

    /** The sender: both clocks start now (postcopy begins, or a connection was resumed). */
    void restart() {
        lastHeardNanos = lastPingNanos = System.nanoTime();
    }

    /** From the sender's loop: a PING every third of the silence timeout, so that the destination hears from us. */
    void heartbeat() throws IOException {
        long now = System.nanoTime(), third = o.service.settings().limits().silenceMillis() * 1_000_000L / 3;
        if (now - lastPingNanos < third) return;
        lastPingNanos = now;
        o.writer.endPart();
        o.writer.enc().writeCommand(new Command.Ping(HEARTBEAT_PING + (heartbeats++ & 0xffff)));
        o.writer.enc().flush();
    }

    /**
     * While in postcopy, every quarter of the timeout: no return-path message (PONG, request) for the whole timeout
     * means the connection is lost: the channels are closed, which pauses the migration. Runs on the service's deadline
     * thread, so a sender blocked in a full socket is cut loose too.
     */
    void watch() {
        if (o.state().isFinal()) return;
        long timeout = o.service.settings().limits().silenceMillis() * 1_000_000L;
        if (o.state() == MigrationState.POSTCOPY && System.nanoTime() - lastHeardNanos > timeout && o.readerFailure == null) {
            o.readerFailed("no word from the destination for " + timeout / 1_000_000 + " ms (silenceTimeoutMillis)");
        }
        o.service.after(Math.max(25, timeout / 4_000_000), this::watch);
    }
}
