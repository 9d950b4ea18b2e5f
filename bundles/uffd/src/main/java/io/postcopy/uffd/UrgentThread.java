package io.postcopy.uffd;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Real-time priority, within a CPU budget, for a thread a waiting guest depends on (the fault thread, the threads
 * that carry a requested page).
 *
 * <p>SCHED_FIFO wakes such a thread ahead of the busy ones at once, which is what takes a requested page's way under
 * a millisecond on busy CPUs; but a real-time thread kept busy by a peer that floods it (or by a fault storm) would
 * starve everything else. So every urgent thread of the JVM draws on one token bucket of CPU time: it refills at
 * {@code percent} of one CPU up to {@code burst}; a thread that finds the bucket empty after its work drops to
 * SCHED_OTHER at its nice value, and goes back to SCHED_FIFO once the bucket is half full again (the debt a flood
 * leaves is at most one burst, so real time returns within 1.5 bursts' refill after it ends). Real-time CPU use
 * is thus capped by construction, like SCHED_DEADLINE's, but a thread over budget keeps running at ordinary
 * priority instead of being stopped.
 *
 * <p>Thread-confined: {@link #enter} on the thread, then {@link #charge()} after each piece of work, before it
 * blocks again (one {@code clock_gettime} per call; the policy changes only on crossing the budget).
 */
public final class UrgentThread {
    private static final Object BUCKET = new Object();
    private static long tokens = Long.MIN_VALUE;   // ns of CPU left; MIN_VALUE: not filled yet
    private static long refilledAt;
    private static volatile int percent = 50;
    /** The default burst: 10 ms of CPU at once. */
    public static final long DEFAULT_BURST_NANOS = 10_000_000L;
    private static volatile long burst = DEFAULT_BURST_NANOS;
    private static final AtomicLong demotions = new AtomicLong();

    private final int fifo;
    private final int nice;
    private final String scheduling;
    private boolean realtime;
    private long cpuAt;

    private UrgentThread(int fifo, int nice, boolean realtime, String scheduling) {
        this.fifo = fifo;
        this.nice = nice;
        this.realtime = realtime;
        this.scheduling = scheduling;
        this.cpuAt = realtime ? NativeMemory.threadCpuNanos() : 0;
    }

    /**
     * Sets the JVM-wide budget of all urgent threads' real-time CPU use.
     *
     * @param percentOfOneCpu 1..100: the bucket's refill rate
     * @param burstNanos the bucket's size: what they may use at once
     */
    public static void budget(int percentOfOneCpu, long burstNanos) {
        if (percentOfOneCpu < 1 || percentOfOneCpu > 100) throw new IllegalArgumentException("real-time CPU percent " + percentOfOneCpu + " not in 1..100");
        if (burstNanos < 100_000 || burstNanos > 1_000_000_000L) throw new IllegalArgumentException("real-time burst " + burstNanos + " ns not in 0.1 ms..1 s");
        synchronized (BUCKET) {
            percent = percentOfOneCpu;
            burst = burstNanos;
            tokens = Math.min(tokens, burstNanos);
        }
    }

    /** The budget's refill rate, percent of one CPU. */
    public static int budgetPercent() { return percent; }

    /** How many times an urgent thread of this JVM dropped to ordinary priority because the budget ran out. */
    public static long demotions() { return demotions.get(); }

    /**
     * Raises the calling thread: SCHED_FIFO {@code fifoPriority} within the budget if {@code fifoPriority > 0} (nice
     * {@code nice} when over it), else nice {@code nice}. Needs CAP_SYS_NICE; without it the thread keeps its
     * scheduling and {@link #refused()} says so.
     */
    public static UrgentThread enter(int fifoPriority, int nice) {
        if (fifoPriority < 0 || fifoPriority > 99) throw new IllegalArgumentException("SCHED_FIFO priority " + fifoPriority + " not in 0..99");
        if (nice < -20 || nice > 19) throw new IllegalArgumentException("nice " + nice + " not in -20..19");
        if (fifoPriority > 0 && NativeMemory.setThreadRealtime(fifoPriority)) {
            return new UrgentThread(fifoPriority, nice, true, "SCHED_FIFO " + fifoPriority + " within " + percent + " % of a CPU, else nice " + nice);
        }
        if (nice != 0 && NativeMemory.setThreadFair(nice)) {
            return new UrgentThread(0, nice, false, "nice " + nice);
        }
        return new UrgentThread(0, nice, false, fifoPriority == 0 && nice == 0 ? "default" : "default (refused: needs CAP_SYS_NICE)");
    }

    /** True if the priority asked for was refused. */
    public boolean refused() { return scheduling.startsWith("default ("); }

    /** What the thread got, for logs and status. */
    public String scheduling() { return scheduling; }

    /** True while the thread runs SCHED_FIFO. */
    public boolean realtime() { return realtime; }

    /** Charges the CPU used since the last call to the budget; drops to or returns from real time across it. */
    public void charge() {
        if (fifo == 0) return;
        long cpu = NativeMemory.threadCpuNanos();
        long used = cpu - cpuAt;
        cpuAt = cpu;
        long left;
        synchronized (BUCKET) {
            long now = System.nanoTime();
            if (tokens == Long.MIN_VALUE) {
                tokens = burst;
            } else {
                // (now - refilledAt) * percent / 100 without overflow for any gap up to ~290 years
                tokens = Math.min(burst, tokens + (now - refilledAt) / 100 * percent);
            }
            refilledAt = now;
            tokens = Math.max(-burst, tokens - used);   // a bounded debt: real time returns soon after a flood
            left = tokens;
        }
        if (realtime && left < 0) {
            if (NativeMemory.setThreadFair(nice)) {
                realtime = false;
                demotions.incrementAndGet();
            }
        } else if (!realtime && left >= burst / 2) {
            realtime = NativeMemory.setThreadRealtime(fifo);
        }
    }
}
