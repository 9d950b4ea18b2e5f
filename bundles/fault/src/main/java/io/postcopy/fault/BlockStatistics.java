package io.postcopy.fault;

/** Progress and latency of one block of an incoming migration. */
public record BlockStatistics(String idstr, long pages, long pagesReceived, long faults, long requests,
                              LatencySummary latency) {
    /** Percent of the block's pages present. */
    public double receivedPercent() {
        return pages == 0 ? 100.0 : 100.0 * pagesReceived / pages;
    }
}
