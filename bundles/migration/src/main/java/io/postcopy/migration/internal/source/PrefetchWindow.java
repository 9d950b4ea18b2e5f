package io.postcopy.migration.internal.source;

/**
 * Prefetch that learns: after a requested page, how many of the pages that follow it in its RAM block the source
 * pushes on the same channel, learned per block from the requests themselves.
 *
 * <p>A request that follows the last one of its block is sequential: after its page, and either at most
 * {@link #GAP} pages beyond the window pushed after it (the guest reads on, or caught up with pages still on their
 * way) or with every page between them sent already (the guest read on over pages the main stream brought). Then
 * the window doubles, from 1 up to the block's maximum. Any other request (backwards, or further ahead) is random:
 * the window collapses to 0 at once, so a random guest gets a page pushed only now and then (after an accidental
 * neighbour, or a jump over pages all sent already), and its next request never waits behind pushed pages. The same page again (a second vCPU, a repeated request) teaches nothing. A hot set read
 * at random inside a region is random here too, so its window stays at 0: its neighbours are touched, but only later
 * and in no predictable order, and pushing them would delay the next request behind pages the guest does not need
 * yet; the hot set is small and its pages are requested once. The window never reaches past the end of its block,
 * and a block's window is never used for another.
 *
 * <p>Arithmetic over primitive arrays, one slot per block, and a look at the page book's sent pages; nothing is
 * allocated per request. Threads: the one
 * that serves requests, one at a time (the return-path reader under the {@link PreemptSender}'s lock, or the
 * sender when the main stream serves requests); each serving path has its own.
 */
final class PrefetchWindow {
    /** How far beyond the pushed window a request still counts as following it (a guest skipping a page or two). */
    static final int GAP = 2;

    /** Where the destination lacks pages: the {@link PageBook}'s sent pages. */
    interface Unsent {
        /** The first page of block {@code bi} at or after {@code from} not sent yet, or -1. */
        long nextUnsent(int bi, long from);
    }

    private final Unsent unsent;
    private final long[] blockPages;
    private final int[] max;
    /** Per block: the last requested page (-1: none yet), and the window pushed after it. */
    private final long[] last;
    private final int[] window;

    /**
     * @param blockPages the pages of each block (in the block's page size)
     * @param maxWindow  the largest window of each block, in its pages; 0: never push
     */
    PrefetchWindow(long[] blockPages, int[] maxWindow, Unsent unsent) {
        if (blockPages.length != maxWindow.length) throw new IllegalArgumentException("one maximum per block");
        this.unsent = unsent;
        this.blockPages = blockPages.clone();
        this.max = maxWindow.clone();
        this.last = new long[blockPages.length];
        this.window = new int[blockPages.length];
        java.util.Arrays.fill(last, -1);
    }

    /**
     * A window over {@code book}'s blocks of at most {@code maxTargetPages} target pages (4 KiB) of bytes: a block
     * of larger pages gets as many of its pages as fit in those bytes (none for 2 MiB pages below 512).
     */
    static PrefetchWindow of(PageBook book, int maxTargetPages) {
        int n = book.blockCount();
        long[] pages = new long[n];
        int[] max = new int[n];
        for (int bi = 0; bi < n; bi++) {
            pages[bi] = book.blocks.get(bi).pages();
            max[bi] = maxTargetPages / book.targets(bi);
        }
        return new PrefetchWindow(pages, max, book::nextUnsent);
    }

    /**
     * A request for {@code page} of block {@code bi}: learns from it and returns how many pages right after it to
     * push, 0 for none; never more than the block has after {@code page}.
     */
    int request(int bi, long page) {
        long prev = last[bi];
        int w = window[bi];
        if (page != prev) {
            if (prev >= 0 && page > prev && (page <= prev + w + 1 + GAP || readOver(bi, prev + 1, page))) {
                w = w == 0 ? Math.min(1, max[bi]) : Math.min(max[bi], w * 2);
            } else {
                w = 0;
            }
            window[bi] = w;
            last[bi] = page;
        }
        return (int) Math.max(0, Math.min(w, blockPages[bi] - 1 - page));
    }

    /** Whether every page of {@code [from, to)} of block {@code bi} is sent (stops at the first that is not). */
    private boolean readOver(int bi, long from, long to) {
        long u = unsent.nextUnsent(bi, from);
        return u < 0 || u >= to;
    }

    /** The current window of block {@code bi} (for tests and logs). */
    int window(int bi) {
        return window[bi];
    }
}
