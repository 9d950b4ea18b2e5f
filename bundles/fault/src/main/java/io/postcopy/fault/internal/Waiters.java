package io.postcopy.fault.internal;

import io.postcopy.fault.LatencySummary;
import java.util.HashMap;
import java.util.Map;
import org.HdrHistogram.Histogram;

/**
 * Threads blocked on faults, from the fault read until the page is placed: the source of fault latency
 * and blocktime (the seed's {@code PostcopyBlocktimeContext}, for any number of threads). Touched only for
 * faulted pages, never on the background placement path; guarded by its own monitor.
 */
final class Waiters {
    private int size;
    private int[] tid = new int[64];
    private int[] block = new int[64];
    private long[] page = new long[64];
    private long[] since = new long[64];
    private final Histogram[] perBlock;
    private final Histogram all = histogram();
    private final Map<Integer, Long> blocktimeNanosByTid = new HashMap<>();
    private long blocktimeNanos;

    Waiters(int blocks) {
        perBlock = new Histogram[blocks];
        for (int i = 0; i < blocks; i++) perBlock[i] = histogram();
    }

    private static Histogram histogram() {
        return new Histogram(1, 3_600_000_000L, 3);   // 1 µs .. 1 h, 3 significant digits
    }

    synchronized void add(int threadId, int blockIndex, long pageIndex, long nanos) {
        if (size == tid.length) grow();
        tid[size] = threadId;
        block[size] = blockIndex;
        page[size] = pageIndex;
        since[size] = nanos;
        size++;
    }

    /** Releases every waiter on pages {@code [from, to)} of a block: each one's wait becomes a latency sample. */
    synchronized void release(int blockIndex, long from, long to, long now) {
        for (int i = 0; i < size; ) {
            if (block[i] == blockIndex && page[i] >= from && page[i] < to) {
                long waited = Math.max(now - since[i], 0);
                long micros = Math.max(waited / 1000, 1);
                perBlock[blockIndex].recordValue(Math.min(micros, all.getHighestTrackableValue()));
                all.recordValue(Math.min(micros, all.getHighestTrackableValue()));
                blocktimeNanos += waited;
                blocktimeNanosByTid.merge(tid[i], waited, Long::sum);
                removeAt(i);
            } else {
                i++;
            }
        }
    }

    private void removeAt(int i) {
        size--;
        tid[i] = tid[size];
        block[i] = block[size];
        page[i] = page[size];
        since[i] = since[size];
    }

    private void grow() {
        int n = tid.length * 2;
        tid = java.util.Arrays.copyOf(tid, n);
        block = java.util.Arrays.copyOf(block, n);
        page = java.util.Arrays.copyOf(page, n);
        since = java.util.Arrays.copyOf(since, n);
    }

    synchronized int waiting() {
        return size;
    }

    synchronized LatencySummary summary(int blockIndex) {
        return summarize(blockIndex < 0 ? all : perBlock[blockIndex]);
    }

    synchronized long blocktimeMicros() {
        return blocktimeNanos / 1000;
    }

    synchronized Map<Integer, Long> blocktimeMicrosByThread() {
        Map<Integer, Long> m = new HashMap<>();
        blocktimeNanosByTid.forEach((t, n) -> m.put(t, n / 1000));
        return m;
    }

    private static LatencySummary summarize(Histogram h) {
        if (h.getTotalCount() == 0) return LatencySummary.EMPTY;
        return new LatencySummary(h.getTotalCount(), h.getValueAtPercentile(50), h.getValueAtPercentile(99),
                h.getValueAtPercentile(99.9), h.getMaxValue(), h.getMean());
    }
}
