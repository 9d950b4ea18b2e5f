package io.postcopy.workload;

/**
 * The access times of a workload's threads, merged: every page read or write timed around its native copy.
 *
 * @param count accesses recorded
 * @param p50Us median, in microseconds
 * @param p99Us 99th percentile, in microseconds
 * @param p999Us 99.9th percentile, in microseconds
 * @param maxUs longest access, in microseconds
 * @param meanUs mean, in microseconds
 * @param stalls accesses that took longer than {@code thresholdUs}
 * @param thresholdUs the stall threshold ({@link WorkloadOptions#stallThreshold()}), in microseconds
 */
public record LatencySummary(long count, double p50Us, double p99Us, double p999Us, double maxUs, double meanUs,
        long stalls, double thresholdUs) {
}
