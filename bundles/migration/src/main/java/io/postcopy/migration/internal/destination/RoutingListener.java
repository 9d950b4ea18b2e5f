package io.postcopy.migration.internal.destination;

import io.postcopy.migration.internal.Refused;
import java.net.InetAddress;
import java.net.InetSocketAddress;

/**
 * The listener that routed a migration's main connection, as the migration sees it: where its channel token is
 * announced (extra channels prove with it which migration they belong to), a port to recover on (QEMU's
 * migrate-recover), and whether QEMU's multifd channel was refused (the reason QEMU then closes its stream).
 * Called from the migration's stream thread ({@link #ended} also from an API caller's thread that cancels a paused
 * migration); {@link #recover} from an API caller's thread.
 */
public interface RoutingListener {
    /** CHANNEL_TOKEN: {@code token} is {@code d}'s; a token may serve one migration only. */
    void announce(byte[] token, Destination d) throws Refused;

    /** A paused migration's token is good for one more channel (the resumed source opens it again). */
    void reannounce(byte[] token, Destination d);

    /** {@code d} has ended: its token is no longer good. */
    void ended(Destination d);

    /** A port of its own where {@code d}'s QEMU source resumes. */
    InetSocketAddress recover(Destination d, InetSocketAddress bind);

    /** Whether a multifd channel from {@code host} was refused since {@code sinceNanos}. */
    boolean multifdRefusedFrom(InetAddress host, long sinceNanos);
}
