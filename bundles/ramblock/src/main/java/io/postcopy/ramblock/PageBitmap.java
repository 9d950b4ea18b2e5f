package io.postcopy.ramblock;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A fixed-size bitmap with one bit per page of a block: which pages were received, requested, dirtied or
 * sent. Single-bit operations are atomic; range operations are atomic per 64-page word; queries and run
 * iteration are weakly consistent under concurrent change. Nothing here allocates after construction,
 * because the fault thread and the discard sender call it once per page.
 */
public final class PageBitmap {
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    /** Receives one run of set pages; primitive parameters, so iterating allocates nothing. */
    @FunctionalInterface
    public interface RunConsumer {
        void accept(long startPage, long length);
    }

    private final long size;
    private final long[] words;

    /** A bitmap of {@code pages} clear bits. */
    public PageBitmap(long pages) {
        if (pages < 0 || (pages + 63) >>> 6 > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException("bitmap of " + pages + " pages");
        this.size = pages;
        this.words = new long[(int) ((pages + 63) >>> 6)];
    }

    /** The number of pages (bits). */
    public long size() {
        return size;
    }

    public boolean get(long page) {
        check(page);
        return ((long) WORDS.getAcquire(words, word(page)) & bit(page)) != 0;
    }

    /** Sets the bit and returns its previous value: true means another caller got there first. */
    public boolean testAndSet(long page) {
        check(page);
        int w = word(page);
        long mask = bit(page);
        // A plain read first: for de-duplication most pages are already set, and a read costs no cache-line ownership.
        if (((long) WORDS.getAcquire(words, w) & mask) != 0) return true;
        return ((long) WORDS.getAndBitwiseOr(words, w, mask) & mask) != 0;
    }

    /** Clears the bit and returns its previous value. */
    public boolean testAndClear(long page) {
        check(page);
        int w = word(page);
        long mask = bit(page);
        if (((long) WORDS.getAcquire(words, w) & mask) == 0) return false;
        return ((long) WORDS.getAndBitwiseAnd(words, w, ~mask) & mask) != 0;
    }

    public void set(long page) {
        testAndSet(page);
    }

    public void clear(long page) {
        testAndClear(page);
    }

    /** Sets the pages {@code [from, to)}. */
    public void setRange(long from, long to) {
        checkRange(from, to);
        if (from == to) return;
        int first = word(from), last = word(to - 1);
        long firstMask = -1L << from, lastMask = -1L >>> -to;
        if (first == last) {
            WORDS.getAndBitwiseOr(words, first, firstMask & lastMask);
            return;
        }
        WORDS.getAndBitwiseOr(words, first, firstMask);
        for (int w = first + 1; w < last; w++) WORDS.setRelease(words, w, -1L);
        WORDS.getAndBitwiseOr(words, last, lastMask);
    }

    /** Clears the pages {@code [from, to)}. */
    public void clearRange(long from, long to) {
        checkRange(from, to);
        if (from == to) return;
        int first = word(from), last = word(to - 1);
        long firstMask = -1L << from, lastMask = -1L >>> -to;
        if (first == last) {
            WORDS.getAndBitwiseAnd(words, first, ~(firstMask & lastMask));
            return;
        }
        WORDS.getAndBitwiseAnd(words, first, ~firstMask);
        for (int w = first + 1; w < last; w++) WORDS.setRelease(words, w, 0L);
        WORDS.getAndBitwiseAnd(words, last, ~lastMask);
    }

    /** Clears every page. */
    public void clearAll() {
        for (int w = 0; w < words.length; w++) WORDS.setRelease(words, w, 0L);
    }

    /** The number of set pages, counted now (a popcount per word: cheap, and no counter on the hot path). */
    public long cardinality() {
        long n = 0;
        for (int w = 0; w < words.length; w++) n += Long.bitCount((long) WORDS.getAcquire(words, w));
        return n;
    }

    /** The first set page at or after {@code from}, or -1 when there is none. */
    public long nextSetBit(long from) {
        if (from < 0) throw new IndexOutOfBoundsException("page " + from);
        if (from >= size) return -1;
        int w = word(from);
        long bits = (long) WORDS.getAcquire(words, w) & (-1L << from);
        while (true) {
            if (bits != 0) {
                long page = ((long) w << 6) + Long.numberOfTrailingZeros(bits);
                return page < size ? page : -1;
            }
            if (++w == words.length) return -1;
            bits = (long) WORDS.getAcquire(words, w);
        }
    }

    /** The first clear page at or after {@code from}, or -1 when there is none. */
    public long nextClearBit(long from) {
        if (from < 0) throw new IndexOutOfBoundsException("page " + from);
        if (from >= size) return -1;
        int w = word(from);
        long bits = ~(long) WORDS.getAcquire(words, w) & (-1L << from);
        while (true) {
            if (bits != 0) {
                long page = ((long) w << 6) + Long.numberOfTrailingZeros(bits);
                return page < size ? page : -1;
            }
            if (++w == words.length) return -1;
            bits = ~(long) WORDS.getAcquire(words, w);
        }
    }

    /** Calls {@code consumer} for every maximal run of set pages, in ascending order. */
    public void forEachRun(RunConsumer consumer) {
        forEachRun(0, size, consumer);
    }

    /** Calls {@code consumer} for every maximal run of set pages within {@code [from, to)}, in ascending order. */
    public void forEachRun(long from, long to, RunConsumer consumer) {
        checkRange(from, to);
        long start = from < to ? nextSetBit(from) : -1;
        while (start >= 0 && start < to) {
            long end = nextClearBit(start);
            if (end < 0 || end > to) end = to;
            consumer.accept(start, end - start);
            if (end >= to) return;
            start = nextSetBit(end);
        }
    }

    private static int word(long page) {
        return (int) (page >>> 6);
    }

    private static long bit(long page) {
        return 1L << page; // shifts use the low six bits
    }

    private void check(long page) {
        if (page < 0 || page >= size) throw new IndexOutOfBoundsException("page " + page + " of " + size);
    }

    private void checkRange(long from, long to) {
        if (from < 0 || from > to || to > size)
            throw new IndexOutOfBoundsException("pages [" + from + ", " + to + ") of " + size);
    }

    /**
     * This bitmap in QEMU's RECV_BITMAP layout (postcopy recovery): one bit per target page, each page of this
     * bitmap standing for {@code targetsPerPage} target pages, in little-endian 64-bit words, rounded up to
     * whole words.
     */
    public java.nio.ByteBuffer toTargetPageWords(int targetsPerPage) {
        if (targetsPerPage < 1) throw new IllegalArgumentException("targetsPerPage " + targetsPerPage);
        long bits = size * targetsPerPage;
        java.nio.ByteBuffer out = java.nio.ByteBuffer.allocate((int) (((bits + 63) >>> 6) * 8)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        long word = 0;
        long t = 0;
        for (long p = 0; p < size; p++) {
            boolean set = get(p);
            for (int k = 0; k < targetsPerPage; k++, t++) {
                if (set) word |= 1L << (t & 63);
                if ((t & 63) == 63) {
                    out.putLong(word);
                    word = 0;
                }
            }
        }
        if ((t & 63) != 0) out.putLong(word);
        return out.flip();
    }

    /**
     * Keeps a page set only if every one of its target pages is set in {@code words} (QEMU's RECV_BITMAP layout,
     * as {@link #toTargetPageWords}): on a resumed source, what was sent but never received goes again.
     *
     * @throws IllegalArgumentException when {@code words} does not hold exactly this bitmap's target pages
     */
    public void retainReceived(java.nio.ByteBuffer words, int targetsPerPage) {
        long bits = size * targetsPerPage;
        long expected = ((bits + 63) >>> 6) * 8;
        if (words.remaining() != expected)
            throw new IllegalArgumentException("a bitmap of " + words.remaining() + " bytes for " + bits + " target pages ("
                    + expected + " expected)");
        java.nio.ByteBuffer w = words.duplicate().order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int base = w.position();
        for (long p = 0; p < size; p++) {
            if (!get(p)) continue;
            for (int k = 0; k < targetsPerPage; k++) {
                long t = p * targetsPerPage + k;
                if ((w.getLong(base + (int) (t >>> 6) * 8) & (1L << (t & 63))) == 0) {
                    clear(p);
                    break;
                }
            }
        }
    }

    @Override
    public String toString() {
        return "PageBitmap[" + cardinality() + " of " + size + " set]";
    }
}
