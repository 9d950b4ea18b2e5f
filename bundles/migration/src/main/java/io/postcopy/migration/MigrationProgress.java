package io.postcopy.migration;

/**
 * A snapshot of a migration's counters. Pages are target pages (4 KiB).
 *
 * @param bytes             bytes of the main stream sent (source) or received (destination)
 * @param pages             PAGE records (pages with content)
 * @param zeroPages         ZERO records
 * @param totalPages        target pages of all migrated blocks (0 before the block list)
 * @param remainingPages    pages not yet sent (source) or not yet present (destination)
 * @param iterations        precopy passes (source)
 * @param dirtyPages        pages found dirty by the last scan (source)
 * @param discardRanges     discard ranges sent or applied
 * @param requests          page requests received (source) or sent (destination)
 * @param requestedPages    pages served out of order (source): the requested ones and those prefetch pushed after
 *                          them
 * @param postcopyPageBytes page payload moved after the switch (PAGE records only)
 * @param postcopyNanos     time since the switch (or from the switch to the end)
 * @param throughput        page payload bytes per second: during postcopy once it began, else since the start
 * @param deviceSections    device sections saved (source) or loaded by a handler (destination)
 * @param opaqueSections    device sections with no handler here, kept as bytes (destination)
 * @param prefetchedPages   pages (target pages) pushed right after requested ones because the guest was learned
 *                          to read on (source; the {@code prefetchMaxPages} setting); part of {@code requestedPages}
 */
public record MigrationProgress(long bytes, long pages, long zeroPages, long totalPages, long remainingPages,
                                int iterations, long dirtyPages, long discardRanges, long requests,
                                long requestedPages, long postcopyPageBytes, long postcopyNanos, double throughput,
                                int deviceSections, int opaqueSections, long prefetchedPages) {

    /** The 3.0 constructor, without {@code prefetchedPages} (none). */
    public MigrationProgress(long bytes, long pages, long zeroPages, long totalPages, long remainingPages,
                             int iterations, long dirtyPages, long discardRanges, long requests,
                             long requestedPages, long postcopyPageBytes, long postcopyNanos, double throughput,
                             int deviceSections, int opaqueSections) {
        this(bytes, pages, zeroPages, totalPages, remainingPages, iterations, dirtyPages, discardRanges, requests,
                requestedPages, postcopyPageBytes, postcopyNanos, throughput, deviceSections, opaqueSections, 0);
    }

    /** {@link #throughput()} in 10^9 bytes per second. */
    public double throughputGBps() {
        return throughput / 1e9;
    }
}
