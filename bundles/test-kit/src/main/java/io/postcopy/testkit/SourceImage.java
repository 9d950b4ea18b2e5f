package io.postcopy.testkit;

import io.postcopy.uffd.NativeMemory;

/**
 * The source's RAM in tests: deterministic page content in native memory, so that every byte a destination
 * placed or a reader saw can be checked. Every 8-byte word depends on (seed, 4 KiB page, word); every 7th
 * page ({@code p % 7 == 3}) is a zero page, sent as one; optionally every 5th unit of {@code zeroUnit} bytes
 * ({@code u % 5 == 4}, e.g. a whole huge page) is zero too. Static helpers over plain addresses: an image is a
 * {@code long} the caller frees with {@link NativeMemory#free}. Any thread.
 */
public final class SourceImage {
    /** The target page size the content and the zero pattern are laid out in. */
    public static final long PAGE = 4096;

    private SourceImage() {}

    /** An image of {@code bytes} (a multiple of {@link #PAGE}) with zero pages but no zero units. */
    public static long create(long bytes, long seed) {
        return create(bytes, 0, seed);
    }

    /** An image of {@code bytes}; {@code zeroUnit} 0 for no zero units. */
    public static long create(long bytes, long zeroUnit, long seed) {
        long a = NativeMemory.allocate(bytes);   // zeroed
        fill(a, bytes, zeroUnit, seed);
        return a;
    }

    /**
     * Writes the image's content into {@code [address, address+bytes)}, which must be zero (a fresh block):
     * zero pages are left untouched, so they stay unpopulated.
     */
    public static void fill(long address, long bytes, long zeroUnit, long seed) {
        for (long p = 0; p < bytes / PAGE; p++) {
            if (isZeroPage(p * PAGE, zeroUnit)) continue;
            for (long o = 0; o < PAGE; o += 8) NativeMemory.putLong(address + p * PAGE + o, seed * 0x9E3779B97F4A7C15L ^ (p << 20) ^ o);
        }
    }

    /** Whether the page at byte {@code offset} is zero in an image made with {@code zeroUnit}. */
    public static boolean isZeroPage(long offset, long zeroUnit) {
        return (offset / PAGE) % 7 == 3 || (zeroUnit > 0 && (offset / zeroUnit) % 5 == 4);
    }

    /** Receives the pieces of {@link #forEachRun}. */
    @FunctionalInterface
    public interface RunSink {
        void run(long offset, long length, boolean zero);
    }

    /**
     * Splits {@code [offset, offset+length)} as a stream carries it, in address order: each run of data pages
     * in one piece, each zero page on its own.
     */
    public static void forEachRun(long offset, long length, long zeroUnit, RunSink sink) {
        long runStart = -1, end = offset + length;
        for (long o = offset; o <= end; o += PAGE) {
            boolean data = o < end && !isZeroPage(o, zeroUnit);
            if (data && runStart < 0) runStart = o;
            if (!data && runStart >= 0) {
                sink.run(runStart, o - runStart, false);
                runStart = -1;
            }
            if (o < end && !data) sink.run(o, PAGE, true);
        }
    }
}
