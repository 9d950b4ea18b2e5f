package io.postcopy.workload.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.workload.VerifyResult;
import io.postcopy.workload.Workload;

/**
 * The content function. A page image of (seed, page, generation) is: word 0 = generation, word 1 = seed,
 * word i ≥ 2 = {@link #word}(base(seed, page, generation), i). Images are built and checked in private native
 * buffers only; block memory is reached solely through {@link NativeMemory#nativeCopy}.
 */
public final class PageImage {
    public static final int PAGE = Workload.PAGE_SIZE;
    static final int WORDS = PAGE / 8;
    /** Pages copied per native call when walking a whole block. */
    static final int CHUNK_PAGES = 16;

    private PageImage() {}

    static long fmix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The per-page key every word of the image derives from. */
    static long base(long seed, long page, long generation) {
        return fmix(fmix(seed + page * 0x9E3779B97F4A7C15L) + generation * 0xC2B2AE3D27D4EB4FL);
    }

    static long word(long base, int index) {
        return fmix(base + index * 0x165667B19E3779F9L);
    }

    /** Builds the image of (seed, page, generation) in the private buffer at {@code buf}. */
    public static void build(long buf, long seed, long page, long generation) {
        long base = base(seed, page, generation);
        NativeMemory.putLong(buf, generation);
        NativeMemory.putLong(buf + 8, seed);
        for (int i = 2; i < WORDS; i++) NativeMemory.putLong(buf + 8L * i, word(base, i));
    }

    /** Classification of one page in a private buffer. */
    static final int ZERO = 0, FILLED = 1, WRITTEN = 2, MISMATCH = 3;

    /**
     * Classifies the copy of {@code page} at {@code buf}: all zero, a consistent image of generation 0 or of a
     * later one, or a mismatch (also when {@code requireSeed} and the seed differs).
     */
    static int classify(long buf, long page, boolean requireSeed, long expectedSeed) {
        long generation = NativeMemory.getLong(buf);
        long seed = NativeMemory.getLong(buf + 8);
        if (generation == 0 && seed == 0 && NativeMemory.isZero(buf, PAGE)) return ZERO;
        if (requireSeed && seed != expectedSeed) return MISMATCH;
        long base = base(seed, page, generation);
        for (int i = 2; i < WORDS; i++) if (NativeMemory.getLong(buf + 8L * i) != word(base, i)) return MISMATCH;
        return generation == 0 ? FILLED : WRITTEN;
    }

    /** True when the copy at {@code buf} is zero or a consistent image of {@code page}. */
    public static boolean consistent(long buf, long page) {
        return classify(buf, page, false, 0) != MISMATCH;
    }

    static long pages(RamBlock block) {
        return block.usedLength() / PAGE;
    }

    /** Writes generation 0 of {@code seed} into every page of the used length. */
    public static void fill(RamBlock block, long seed) {
        long pages = pages(block), host = block.hostAddress();
        long buf = NativeMemory.allocate((long) CHUNK_PAGES * PAGE);
        try (Scan scan = new Scan(block, "fill")) {
            for (long p = 0; p < pages; p += CHUNK_PAGES) {
                scan.check();
                int n = (int) Math.min(CHUNK_PAGES, pages - p);
                for (int i = 0; i < n; i++) build(buf + (long) i * PAGE, seed, p + i, 0);
                NativeMemory.nativeCopy(buf, host + p * PAGE, (long) n * PAGE);
            }
        } finally {
            NativeMemory.free(buf);
        }
    }

    public static VerifyResult verify(RamBlock block, boolean requireSeed, long seed) {
        long pages = pages(block), host = block.hostAddress();
        long zero = 0, filled = 0, written = 0, bad = 0, first = -1;
        long buf = NativeMemory.allocate((long) CHUNK_PAGES * PAGE);
        try (Scan scan = new Scan(block, "verify")) {
            for (long p = 0; p < pages; p += CHUNK_PAGES) {
                scan.check();
                int n = (int) Math.min(CHUNK_PAGES, pages - p);
                NativeMemory.nativeCopy(host + p * PAGE, buf, (long) n * PAGE);
                scan.check();     // a chunk read while the block was being taken away counts for nothing
                for (int i = 0; i < n; i++) {
                    switch (classify(buf + (long) i * PAGE, p + i, requireSeed, seed)) {
                        case ZERO: zero++; break;
                        case FILLED: filled++; break;
                        case WRITTEN: written++; break;
                        default:
                            if (bad++ == 0) first = p + i;
                    }
                }
            }
        } finally {
            NativeMemory.free(buf);
        }
        return new VerifyResult(pages, zero, filled, written, bad, first);
    }
}
