package io.postcopy.migration.internal.source;

import io.postcopy.codec.StreamEncoder;
import io.postcopy.migration.MigrationState;
import java.io.IOException;
import java.util.concurrent.locks.LockSupport;

/** {@code OutgoingOptions.maxBandwidth} on the main stream's background pages. Sender only. */
final class Pacing {
    private final Outgoing o;
    private long fromNanos, fromBytes = -1;
    /** The encoder the count started on: a resumed migration writes through a new one, counting from its own start. */
    private StreamEncoder counted;

    Pacing(Outgoing o) {
        this.o = o;
    }

    /**
     * True, after a pause of at most 1 ms, while the main stream is more than 1 ms ahead of {@code maxBandwidth}; the
     * caller checks its other duties (requests, a switch) and asks again. What is buffered goes out before the pause,
     * so the stream is smooth, not bursty.
     */
    boolean holdBack() throws IOException {
        long rate = o.options.maxBandwidth();
        if (rate <= 0 || (o.downtime.guestPaused() && o.state() != MigrationState.POSTCOPY)) return false;   // never stretch downtime
        StreamEncoder enc = o.writer.enc();
        long now = System.nanoTime(), pos = enc.position();
        if (fromBytes < 0 || enc != counted) {
            counted = enc;
            fromBytes = pos;
            fromNanos = now;
            return false;
        }
        long ahead = (long) ((pos - fromBytes) * 1e9 / rate) - (now - fromNanos);
        if (ahead <= 1_000_000) return false;
        enc.flush();
        LockSupport.parkNanos(Math.min(ahead - 1_000_000, 1_000_000));
        return true;
    }
}
