package io.postcopy.migration;

import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * Options of an outgoing migration. Start from {@link #defaults()} and change with the {@code with} methods.
 *
 * @param blocks         names of the blocks to migrate, in order; empty = every block of the registry
 * @param mode           POSTCOPY, HYBRID or PRECOPY_ONLY
 * @param postcopyAfter  HYBRID: switch at the latest this long after the migration started, cutting a pass short;
 *                       an upper bound, the other rules of {@link MigrationMode#HYBRID} may switch earlier (null: only
 *                       by the other rules)
 * @param maxIterations  precopy passes at most (HYBRID switches, PRECOPY_ONLY stops iterating)
 * @param guest          paused at the switch (or before the last precopy pass)
 * @param sendBufferSize SO_SNDBUF of the connection, and the encoder's buffer; 0 = the service's default
 * @param machineName    the configuration section's machine name
 * @param shutTimeout    how long to wait for the destination's SHUT after EOF
 * @param postcopyPreempt open a second connection (QEMU's postcopy-preempt channel) that carries the
 *                       requested pages, so that they never queue behind background pages
 * @param maxBandwidth   bytes per second the main stream may carry (QEMU's max-bandwidth and
 *                       max-postcopy-bandwidth in one), 0 = no limit. Requested pages are never held back: it
 *                       paces the background pages, leaving CPU and network to the guest at the cost of a longer
 *                       migration
 * @param tls            both connections over TLS with these credentials, the destination authenticated by its
 *                       certificate (QEMU's tls-creds, tls-hostname); null: plain TCP
 * @param prefetchMaxPages postcopy: the largest window of pages (target pages, 4 KiB) pushed right after a requested
 *                       page when the guest is learned to read on; 0 = no prefetch, -1 = the service's
 *                       {@code prefetchMaxPages} setting
 */
public record OutgoingOptions(List<String> blocks, MigrationMode mode, Duration postcopyAfter, int maxIterations,
                              GuestControl guest, int sendBufferSize, String machineName, Duration shutTimeout,
                              boolean postcopyPreempt, long maxBandwidth, TlsOptions tls, int prefetchMaxPages) {
    public OutgoingOptions {
        blocks = List.copyOf(blocks);
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(guest, "guest");
        Objects.requireNonNull(shutTimeout, "shutTimeout");
        if (maxIterations < 1) throw new IllegalArgumentException("maxIterations must be >= 1");
        if (sendBufferSize < 0) throw new IllegalArgumentException("sendBufferSize must be >= 0");
        if (maxBandwidth < 0) throw new IllegalArgumentException("maxBandwidth must be >= 0");
        if (prefetchMaxPages < -1 || prefetchMaxPages > MAX_PREFETCH_PAGES)
            throw new IllegalArgumentException("prefetchMaxPages " + prefetchMaxPages + " not in -1.." + MAX_PREFETCH_PAGES);
    }

    /** The largest prefetch window one may ask for: 16 MiB of target pages. */
    public static final int MAX_PREFETCH_PAGES = 4096;

    /** The 1.3 constructor, without {@code prefetchMaxPages} (the service's setting). */
    public OutgoingOptions(List<String> blocks, MigrationMode mode, Duration postcopyAfter, int maxIterations,
                           GuestControl guest, int sendBufferSize, String machineName, Duration shutTimeout,
                           boolean postcopyPreempt, long maxBandwidth, TlsOptions tls) {
        this(blocks, mode, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, shutTimeout, postcopyPreempt,
                maxBandwidth, tls, -1);
    }

    /** The 1.2 constructor, without {@code tls} (plain TCP). */
    public OutgoingOptions(List<String> blocks, MigrationMode mode, Duration postcopyAfter, int maxIterations,
                           GuestControl guest, int sendBufferSize, String machineName, Duration shutTimeout,
                           boolean postcopyPreempt, long maxBandwidth) {
        this(blocks, mode, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, shutTimeout, postcopyPreempt,
                maxBandwidth, null);
    }

    /** The 1.1 constructor, without {@code maxBandwidth} (no limit). */
    public OutgoingOptions(List<String> blocks, MigrationMode mode, Duration postcopyAfter, int maxIterations,
                           GuestControl guest, int sendBufferSize, String machineName, Duration shutTimeout,
                           boolean postcopyPreempt) {
        this(blocks, mode, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, shutTimeout, postcopyPreempt, 0);
    }

    public static OutgoingOptions defaults() {
        return new OutgoingOptions(List.of(), MigrationMode.POSTCOPY, null, 30, GuestControl.NONE, 0, "postcopy-osgi",
                Duration.ofMinutes(5), true, 0, null, -1);
    }

    public OutgoingOptions withBlocks(String... names) {
        return new OutgoingOptions(List.of(names), mode, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, shutTimeout, postcopyPreempt, maxBandwidth, tls, prefetchMaxPages);
    }

    public OutgoingOptions withMode(MigrationMode m) {
        return new OutgoingOptions(blocks, m, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, shutTimeout, postcopyPreempt, maxBandwidth, tls, prefetchMaxPages);
    }

    public OutgoingOptions withPostcopyAfter(Duration d) {
        return new OutgoingOptions(blocks, mode, d, maxIterations, guest, sendBufferSize, machineName, shutTimeout, postcopyPreempt, maxBandwidth, tls, prefetchMaxPages);
    }

    public OutgoingOptions withMaxIterations(int n) {
        return new OutgoingOptions(blocks, mode, postcopyAfter, n, guest, sendBufferSize, machineName, shutTimeout, postcopyPreempt, maxBandwidth, tls, prefetchMaxPages);
    }

    public OutgoingOptions withGuest(GuestControl g) {
        return new OutgoingOptions(blocks, mode, postcopyAfter, maxIterations, g, sendBufferSize, machineName, shutTimeout, postcopyPreempt, maxBandwidth, tls, prefetchMaxPages);
    }

    public OutgoingOptions withSendBufferSize(int bytes) {
        return new OutgoingOptions(blocks, mode, postcopyAfter, maxIterations, guest, bytes, machineName, shutTimeout, postcopyPreempt, maxBandwidth, tls, prefetchMaxPages);
    }

    public OutgoingOptions withShutTimeout(Duration d) {
        return new OutgoingOptions(blocks, mode, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, d, postcopyPreempt, maxBandwidth, tls, prefetchMaxPages);
    }

    public OutgoingOptions withPostcopyPreempt(boolean on) {
        return new OutgoingOptions(blocks, mode, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, shutTimeout, on, maxBandwidth, tls, prefetchMaxPages);
    }

    public OutgoingOptions withMaxBandwidth(long bytesPerSecond) {
        return new OutgoingOptions(blocks, mode, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, shutTimeout,
                postcopyPreempt, bytesPerSecond, tls, prefetchMaxPages);
    }

    /** Postcopy: the largest prefetch window in target pages, 0 = none, -1 = the service's setting. */
    public OutgoingOptions withPrefetchMaxPages(int pages) {
        return new OutgoingOptions(blocks, mode, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, shutTimeout,
                postcopyPreempt, maxBandwidth, tls, pages);
    }

    /** Both connections over TLS with these credentials (null: plain TCP). */
    public OutgoingOptions withTls(TlsOptions t) {
        return new OutgoingOptions(blocks, mode, postcopyAfter, maxIterations, guest, sendBufferSize, machineName, shutTimeout,
                postcopyPreempt, maxBandwidth, t, prefetchMaxPages);
    }
}
