package io.postcopy.migration.internal.source;

import io.postcopy.migration.internal.BulkThread;
import io.postcopy.migration.internal.Urgent;
import java.io.IOException;

/**
 * Postcopy on the main stream (the seed's {@code ram_find_and_save_block} after the switch): the background pages the
 * destination lacks, block after block, and without a preempt channel the queued requested pages first, flushed at
 * once, then the pages prefetch pushes after them ({@link PrefetchWindow}). Either way the background scan goes on
 * right after the last page served out of order (locality). Sender only; the
 * return-path reader claims pages in the same {@link PageBook}, so each page is sent once here.
 */
final class PostcopyPass {
    private final Outgoing o;
    /** The sender as a mover of background pages, from its first run on (the same thread runs it again after a pause). */
    private BulkThread bulk;
    /** What to push after a requested page on the main stream; made at the first run (the blocks are known then). */
    private PrefetchWindow prefetch;
    /** The pushes a batch of requests asked for ({@link PageRef}s and page counts), sent after the requested pages. */
    private final long[] pushFrom = new long[64];
    private final int[] pushCount = new int[64];

    PostcopyPass(Outgoing o) {
        this.o = o;
    }

    /** Until every page is sent; a lost connection throws (the caller pauses, then runs this again). */
    void run() throws IOException {
        if (bulk == null) bulk = Urgent.bulk(o.service.settings(), "sender of " + o.id(), () -> o.requests);
        PageBook book = o.book;
        if (prefetch == null) prefetch = PrefetchWindow.of(book, o.prefetchMaxPages);
        long seenOnChannel = PageRef.NONE;
        int bi = 0;
        long cursor = 0;
        final int n = book.blockCount();
        for (;;) {
            if (o.cancelled) throw new IOException("cancelled");
            o.silence.heartbeat();
            if (book.requestsQueued()) {
                long served = serveRequests();
                if (served != PageRef.NONE) {
                    bi = PageRef.block(served);
                    cursor = PageRef.page(served) + 1;  // locality: go on after the requested page
                }
                continue;
            }
            if (o.pacing.holdBack()) continue;          // requests are served above, never held back
            long last = book.lastOnChannel;
            if (last != seenOnChannel) {
                seenOnChannel = last;             // locality: go on after the page the preempt channel took
                bi = PageRef.block(last);
                cursor = PageRef.page(last) + 1;
            }
            long p = book.nextUnsent(bi, cursor);
            if (p < 0) p = book.nextUnsent(bi, 0);
            if (p < 0) {
                int next = -1;
                for (int k = 1; k <= n; k++) {
                    int c = (bi + k) % n;
                    if (book.nextUnsent(c, 0) >= 0) {
                        next = c;
                        break;
                    }
                }
                if (next < 0) return;
                bi = next;
                cursor = 0;
                continue;
            }
            cursor = p + 1;
            if (book.claim(bi, p)) continue;      // a request took it for the preempt channel just now
            bulk.check(o.preempt.open());         // with the channel, requested pages never wait for this thread
            o.writer.sendPage(bi, p, true);
        }
    }

    /**
     * Sends every queued requested page not yet sent and flushes; then the pages each one's {@link PrefetchWindow}
     * pushes (those not sent yet), flushed too, so that no requested page waits behind pushed ones. Returns the last
     * page sent, or {@link PageRef#NONE}.
     */
    private long serveRequests() throws IOException {
        long last = PageRef.NONE;
        int pushes = 0;
        for (long r = o.book.pollRequest(); r != PageRef.NONE; r = o.book.pollRequest()) {
            int bi = PageRef.block(r);
            long p = PageRef.page(r);
            if (!o.book.claim(bi, p)) {     // else already on its way: never send a page twice (prefetch still learns)
                o.writer.sendPage(bi, p, true);
                o.requestedPages++;
                last = r;
            }
            int ahead = prefetch.request(bi, p);
            if (ahead > 0 && pushes < pushFrom.length) {    // beyond that many requests at once, their pushes are left out
                pushFrom[pushes] = r;
                pushCount[pushes++] = ahead;
            }
        }
        if (last != PageRef.NONE) o.writer.enc().flush();
        boolean pushed = false;
        for (int k = 0; k < pushes; k++) {
            int bi = PageRef.block(pushFrom[k]);
            long p = PageRef.page(pushFrom[k]);
            long to = p + 1 + pushCount[k];
            for (long q = o.book.claimNextUnsent(bi, p + 1, to); q >= 0; q = o.book.claimNextUnsent(bi, q + 1, to)) {
                o.writer.sendPage(bi, q, true);
                o.requestedPages++;
                o.prefetchedPages += o.book.targets(bi);
                last = PageRef.of(bi, q);
                pushed = true;
            }
        }
        if (pushed) o.writer.enc().flush();
        return last;
    }
}
