package io.postcopy.migration.internal.source;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.PageBitmap;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.LongRange;
import org.junit.jupiter.api.Test;

/**
 * {@link PrefetchWindow}: what the source pushes after a requested page, learned per block. A sequential reader's
 * window doubles to the maximum, a random one's stays at or drops to nothing, and no window ever reaches past its
 * block's end or into another block.
 */
class PrefetchWindowTest {
    private static final int MAX = 64;

    /** Two blocks of 1000 and 300 pages, nothing sent yet (each pushed page is marked sent, as the page book does). */
    private final PageBitmap[] sent = {new PageBitmap(1000), new PageBitmap(300)};
    private final PrefetchWindow w = new PrefetchWindow(new long[] {1000, 300}, new int[] {MAX, MAX},
            (bi, from) -> sent[bi].nextClearBit(from));

    /** A request served as the source serves it: the page and the pushed ones become sent; returns the pushed count. */
    private int serve(int bi, long page) {
        sent[bi].set(page);
        int n = w.request(bi, page);
        for (long p = page + 1; p <= page + n; p++) sent[bi].set(p);
        return n;
    }

    /** Eight requests, each right after the pages pushed after the last, from {@code from}; returns the next page. */
    private long readOn(int bi, long from) {
        long page = from;
        for (int i = 0; i < 8; i++) page += serve(bi, page) + 1;
        return page;
    }

    @Test
    void aSequentialReaderGrowsTheWindowByDoublingToTheMaximum() {
        assertThat(serve(0, 0)).as("the first request teaches nothing yet").isZero();
        // the guest reads on: each request comes right after the pages pushed after the last
        long page = 1;
        int[] seen = new int[8];
        for (int i = 0; i < seen.length; i++) {
            seen[i] = serve(0, page);
            page += seen[i] + 1;
        }
        assertThat(seen).containsExactly(1, 2, 4, 8, 16, 32, 64, 64);
        assertThat(w.window(0)).isEqualTo(MAX);
    }

    @Test
    void aRequestInsideThePushedWindowFollowsToo() {
        serve(0, 10);
        serve(0, 11);             // window 1: 12 pushed
        serve(0, 13);             // window 2: 14, 15
        // the guest caught up with a page still on its way: the same stream, the window grows
        assertThat(w.request(0, 14)).isEqualTo(4);
        assertThat(w.window(0)).isEqualTo(4);
    }

    @Test
    void aReaderThatRanOverPagesTheMainStreamBroughtFollowsToo() {
        serve(0, 0);
        serve(0, 1);
        for (long p = 2; p < 500; p++) sent[0].set(p);   // the main stream sent these meanwhile
        assertThat(serve(0, 500)).as("every page between the two requests was there to read").isEqualTo(2);
    }

    @Test
    void aRandomRequestCollapsesTheWindowAtOnce() {
        readOn(0, 0);
        assertThat(w.window(0)).isEqualTo(MAX);
        assertThat(serve(0, 900)).as("a jump over pages the destination lacks").isZero();
        assertThat(w.window(0)).isZero();
        assertThat(serve(0, 3)).as("backwards").isZero();
    }

    @Test
    void theSamePageAgainTeachesNothing() {
        serve(0, 0);
        serve(0, 1);
        assertThat(w.window(0)).isEqualTo(1);
        assertThat(w.request(0, 1)).isEqualTo(1);
        assertThat(w.window(0)).as("neither grown nor collapsed").isEqualTo(1);
    }

    @Test
    void theWindowNeverReachesPastTheEndOfItsBlock() {
        // 200, 201, 203, 206, 211, 220, 237, 270: the window after 270 would be 64, the block ends at 299
        assertThat(readOn(1, 200)).as("the last push stopped at the block's last page").isEqualTo(300);
        assertThat(w.request(1, 299)).as("the last page: nothing after it").isZero();
        assertThat(w.request(1, 298) + 298L).isLessThanOrEqualTo(299);
    }

    @Test
    void blocksLearnApart() {
        long page = readOn(0, 0);
        assertThat(w.window(0)).isEqualTo(MAX);
        assertThat(serve(1, 150)).as("another block's first request").isZero();
        assertThat(w.window(0)).as("block 0 keeps its window").isEqualTo(MAX);
        assertThat(serve(0, page)).as("and its stream goes on").isEqualTo(MAX);
    }

    @Test
    void aZeroMaximumNeverPushes() {
        PrefetchWindow off = new PrefetchWindow(new long[] {100}, new int[] {0}, (bi, from) -> from < 100 ? from : -1);
        for (long p = 0; p < 100; p++) assertThat(off.request(0, p)).isZero();
        assertThat(off.window(0)).isZero();
    }

    /** Whatever the requests, a window stays within 0..max and never reaches past its block. */
    @Property(tries = 300)
    void windowsStayInTheirBlockAndBelowTheMaximum(@ForAll @IntRange(min = 0, max = 4096) int max,
                                                   @ForAll("requests") long[] requests) {
        long[] pages = {1000, 300};
        PageBitmap[] s = {new PageBitmap(1000), new PageBitmap(300)};
        PrefetchWindow pw = new PrefetchWindow(pages, new int[] {max, max / 8}, (bi, from) -> s[bi].nextClearBit(from));
        for (long r : requests) {
            int bi = (int) (r & 1);
            long page = (r >>> 1) % pages[bi];
            s[bi].set(page);
            int n = pw.request(bi, page);
            assertThat(n).isBetween(0, bi == 0 ? max : max / 8);
            assertThat(page + n).isLessThan(pages[bi]);
            for (long p = page + 1; p <= page + n; p++) s[bi].set(p);
        }
    }

    /** A strictly sequential reader of a block (each request right after what was pushed) reaches the maximum. */
    @Property(tries = 100)
    void aSequentialReaderReachesAnyMaximum(@ForAll @IntRange(min = 1, max = 4096) int max,
                                            @ForAll @LongRange(min = 0, max = 1000) long start) {
        long size = 1_000_000;
        PageBitmap s = new PageBitmap(size);
        PrefetchWindow pw = new PrefetchWindow(new long[] {size}, new int[] {max}, (bi, from) -> s.nextClearBit(from));
        long page = start;
        int requests = 0;
        while (pw.window(0) < max) {
            s.set(page);
            int n = pw.request(0, page);
            for (long p = page + 1; p <= page + n; p++) s.set(p);
            page += n + 1;
            requests++;
        }
        assertThat(requests).as("doubling: about log2(max) requests").isLessThanOrEqualTo(2 + 32 - Integer.numberOfLeadingZeros(max));
    }

    @net.jqwik.api.Provide
    net.jqwik.api.Arbitrary<long[]> requests() {
        return net.jqwik.api.Arbitraries.longs().between(0, 1L << 40).array(long[].class).ofMaxSize(200);
    }
}
