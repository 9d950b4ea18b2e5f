package io.postcopy.migration.internal.source;

/**
 * A block page as one primitive {@code long}: the block's index in the migration's list in the top 16 bits, the
 * page (in the block's own page size) in the low 48. Requests and the sender's locality pass pages around as these,
 * so no object is made per page. Static helpers only; any thread.
 */
final class PageRef {
    /** No page. */
    static final long NONE = -1;
    private static final long PAGE_MASK = 0xffff_ffff_ffffL;

    private PageRef() {
    }

    static long of(int block, long page) {
        return ((long) block << 48) | page;
    }

    static int block(long ref) {
        return (int) (ref >>> 48);
    }

    static long page(long ref) {
        return ref & PAGE_MASK;
    }
}
