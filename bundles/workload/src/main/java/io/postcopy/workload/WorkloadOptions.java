package io.postcopy.workload;

import java.time.Duration;
import java.util.Objects;

/**
 * How a {@link Workload} runs; immutable, built with {@link #builder()}. A workload ends when it is
 * {@linkplain Workload#stop() stopped}, when its {@link #duration()} has passed (if positive), or when every
 * thread has made {@link #accessesPerThread()} accesses (if positive), whichever comes first.
 */
public final class WorkloadOptions {
    private final int threads;
    private final AccessPattern pattern;
    private final double writeFraction;
    private final double hotPageFraction;
    private final double hotAccessFraction;
    private final Duration duration;
    private final long accessesPerThread;
    private final long ratePerThread;
    private final long contentSeed;
    private final long randomSeed;
    private final Duration stallThreshold;
    private final boolean checkReads;
    private final String owner;

    private WorkloadOptions(Builder b) {
        this.threads = b.threads;
        this.pattern = b.pattern;
        this.writeFraction = b.writeFraction;
        this.hotPageFraction = b.hotPageFraction;
        this.hotAccessFraction = b.hotAccessFraction;
        this.duration = b.duration;
        this.accessesPerThread = b.accessesPerThread;
        this.ratePerThread = b.ratePerThread;
        this.contentSeed = b.contentSeed;
        this.randomSeed = b.randomSeed;
        this.stallThreshold = b.stallThreshold;
        this.checkReads = b.checkReads;
        this.owner = b.owner;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** One read-only thread, uniform pattern, until stopped. */
    public static WorkloadOptions defaults() {
        return builder().build();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.threads = threads;
        b.pattern = pattern;
        b.writeFraction = writeFraction;
        b.hotPageFraction = hotPageFraction;
        b.hotAccessFraction = hotAccessFraction;
        b.duration = duration;
        b.accessesPerThread = accessesPerThread;
        b.ratePerThread = ratePerThread;
        b.contentSeed = contentSeed;
        b.randomSeed = randomSeed;
        b.stallThreshold = stallThreshold;
        b.checkReads = checkReads;
        b.owner = owner;
        return b;
    }

    /** vCPU threads (1..1024; default 1). */
    public int threads() { return threads; }

    /** Default {@link AccessPattern#UNIFORM}. */
    public AccessPattern pattern() { return pattern; }

    /** Fraction of accesses that are writes, 0..1 (default 0: read-only). */
    public double writeFraction() { return writeFraction; }

    /** HOTSET: fraction of the pages in the hot set, (0, 1] (default 0.1). */
    public double hotPageFraction() { return hotPageFraction; }

    /** HOTSET: fraction of the accesses that go to the hot set, 0..1 (default 0.9). */
    public double hotAccessFraction() { return hotAccessFraction; }

    /** How long to run; zero (the default) runs until stopped. */
    public Duration duration() { return duration; }

    /** Accesses each thread makes before it ends; 0 (the default) for no limit. */
    public long accessesPerThread() { return accessesPerThread; }

    /** Accesses per second per thread; 0 (the default) runs flat out. */
    public long ratePerThread() { return ratePerThread; }

    /** The seed of the written content ({@link Workload#fill}); default 0. */
    public long contentSeed() { return contentSeed; }

    /** The seed of the page choice (thread {@code t} uses a stream derived from it and {@code t}); default 1. */
    public long randomSeed() { return randomSeed; }

    /** Accesses longer than this count as stalls (default 20 µs). */
    public Duration stallThreshold() { return stallThreshold; }

    /**
     * When true, every page read is checked as {@link Workload#verify} would (and, if the workload also writes,
     * read under the same per-page lock as writes); failures are counted in {@link Workload#readMismatches()}.
     */
    public boolean checkReads() { return checkReads; }

    /**
     * What started the workload and ends it, e.g. {@code in-3} for the reader a listener starts for that migration;
     * empty when started by hand. Shown in listings only.
     *
     * @since 1.2
     */
    public String owner() { return owner; }

    @Override
    public String toString() {
        return "WorkloadOptions[threads=" + threads + ", pattern=" + pattern + ", writeFraction=" + writeFraction
                + (pattern == AccessPattern.HOTSET ? ", hot=" + hotPageFraction + "/" + hotAccessFraction : "")
                + ", duration=" + duration + ", accessesPerThread=" + accessesPerThread + ", ratePerThread="
                + ratePerThread + ", contentSeed=" + contentSeed + ", randomSeed=" + randomSeed
                + ", stallThreshold=" + stallThreshold + ", checkReads=" + checkReads
                + (owner.isEmpty() ? "" : ", owner=" + owner) + "]";
    }

    /** Builds {@link WorkloadOptions}; each setter checks its argument. */
    public static final class Builder {
        private int threads = 1;
        private AccessPattern pattern = AccessPattern.UNIFORM;
        private double writeFraction;
        private double hotPageFraction = 0.1;
        private double hotAccessFraction = 0.9;
        private Duration duration = Duration.ZERO;
        private long accessesPerThread;
        private long ratePerThread;
        private long contentSeed;
        private long randomSeed = 1;
        private Duration stallThreshold = Duration.ofNanos(20_000);
        private boolean checkReads;
        private String owner = "";

        private Builder() {}

        public Builder threads(int n) {
            if (n < 1 || n > 1024) throw new IllegalArgumentException("threads " + n + " not in 1..1024");
            threads = n;
            return this;
        }

        public Builder pattern(AccessPattern p) {
            pattern = Objects.requireNonNull(p, "pattern");
            return this;
        }

        public Builder writeFraction(double f) {
            writeFraction = fraction("writeFraction", f);
            return this;
        }

        /** HOTSET: {@code pageFraction} of the pages get {@code accessFraction} of the accesses. */
        public Builder hotSet(double pageFraction, double accessFraction) {
            if (!(pageFraction > 0 && pageFraction <= 1))
                throw new IllegalArgumentException("hot page fraction " + pageFraction + " not in (0, 1]");
            hotPageFraction = pageFraction;
            hotAccessFraction = fraction("hot access fraction", accessFraction);
            return this;
        }

        public Builder duration(Duration d) {
            if (d == null || d.isNegative()) throw new IllegalArgumentException("duration " + d);
            duration = d;
            return this;
        }

        public Builder accessesPerThread(long n) {
            if (n < 0) throw new IllegalArgumentException("accessesPerThread " + n);
            accessesPerThread = n;
            return this;
        }

        public Builder ratePerThread(long perSecond) {
            if (perSecond < 0) throw new IllegalArgumentException("ratePerThread " + perSecond);
            ratePerThread = perSecond;
            return this;
        }

        public Builder contentSeed(long seed) {
            contentSeed = seed;
            return this;
        }

        public Builder randomSeed(long seed) {
            randomSeed = seed;
            return this;
        }

        public Builder stallThreshold(Duration d) {
            if (d == null || d.isNegative()) throw new IllegalArgumentException("stallThreshold " + d);
            stallThreshold = d;
            return this;
        }

        public Builder checkReads(boolean on) {
            checkReads = on;
            return this;
        }

        /** See {@link WorkloadOptions#owner()}; null is empty. */
        public Builder owner(String what) {
            owner = what == null ? "" : what;
            return this;
        }

        public WorkloadOptions build() {
            return new WorkloadOptions(this);
        }

        private static double fraction(String what, double f) {
            if (!(f >= 0 && f <= 1)) throw new IllegalArgumentException(what + " " + f + " not in [0, 1]");
            return f;
        }
    }
}
