package io.postcopy.fault;

/** Fault → placement latency percentiles in microseconds; {@code count} faults measured. */
public record LatencySummary(long count, double p50, double p99, double p999, double max, double mean) {
    public static final LatencySummary EMPTY = new LatencySummary(0, 0, 0, 0, 0, 0);
}
