package io.postcopy.workload.internal;

import io.postcopy.workload.AccessPattern;
import java.util.SplittableRandom;

/** One thread's choice of the next page and of read or write; deterministic for a given seed and thread. */
public final class PageChooser {
    private final AccessPattern pattern;
    private final long pages;
    private final long hotPages;
    private final double hotAccessFraction;
    private final double writeFraction;
    private final SplittableRandom random;
    private long cursor;

    public PageChooser(AccessPattern pattern, long pages, int thread, int threads, double writeFraction,
            double hotPageFraction, double hotAccessFraction, long randomSeed) {
        if (pages < 1) throw new IllegalArgumentException("no pages");
        this.pattern = pattern;
        this.pages = pages;
        this.hotPages = hotPages(pages, hotPageFraction);
        this.hotAccessFraction = hotAccessFraction;
        this.writeFraction = writeFraction;
        this.random = new SplittableRandom(PageImage.fmix(randomSeed * 0x9E3779B97F4A7C15L + thread));
        // Thread t of n starts a sequential walk at t*pages/n (exactly, without overflow).
        this.cursor = pages / threads * thread + pages % threads * thread / threads;
    }

    /** The hot set of HOTSET: pages [0, hotPages), at least one page. */
    public static long hotPages(long pages, double hotPageFraction) {
        return Math.max(1, Math.min(pages, Math.round(pages * hotPageFraction)));
    }

    public long next() {
        switch (pattern) {
            case SEQUENTIAL: {
                long p = cursor;
                cursor = p + 1 == pages ? 0 : p + 1;
                return p;
            }
            case UNIFORM:
                return random.nextLong(pages);
            default:
                if (hotPages == pages || random.nextDouble() < hotAccessFraction) return random.nextLong(hotPages);
                return hotPages + random.nextLong(pages - hotPages);
        }
    }

    public boolean nextIsWrite() {
        return writeFraction > 0 && (writeFraction >= 1 || random.nextDouble() < writeFraction);
    }
}
