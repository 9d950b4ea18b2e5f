package io.postcopy.migration.internal.source;

import static io.postcopy.migration.internal.AbstractMigration.TARGET_SHIFT;

import io.postcopy.codec.DiscardBatcher;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.ramblock.PageBitmap;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.DirtyTracker;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Which pages of the migrated blocks the destination has. Per block, one bit per block page: {@code sent} holds the
 * pages whose current content the destination has (sent, and not written since); {@code stale} the pages it holds an
 * outdated copy of (sent, then dirtied); {@code onChannel} the pages the preempt channel sent. A dirty scan moves pages
 * from sent to stale; sending a page sets sent and clears stale. At the switch the stale pages become discards, and
 * postcopy sends exactly the pages not in {@code sent}: a page goes twice only if it was dirtied before the switch
 * (or requested while in flight, see {@link PreemptSender}). Also the queue of requested pages for the sender.
 *
 * <p>Threads: the sender does everything to {@code sent} and {@code stale} and alone writes {@link #unsentPages}. In
 * postcopy the return-path reader also touches the book: without a preempt channel it only adds to the request queue;
 * with one it claims requested pages (and the pages prefetch pushes after them) in {@code sent} and marks
 * {@code onChannel}, under the {@link PreemptSender}'s lock. A claim is {@link PageBitmap#testAndSet}, atomic, and the sender claims each postcopy page the same way, so
 * a page is claimed once. {@code onChannel} is otherwise touched only while resuming, when the reader refuses
 * requests (the state is POSTCOPY_RECOVER).
 */
final class PageBook {
    /** The blocks, leased for the whole migration; their order is the block index of a {@link PageRef}. */
    final List<RamBlock> blocks;
    final RamBlockInfo[] infos;
    private final int[] shift;
    private final PageBitmap[] sent, stale, onChannel;
    /**
     * Set pages in each {@code stale} bitmap (sender only). The switch runs in the guest's downtime, where the code
     * runs once per migration and so is interpreted: scanning an empty 1 GiB bitmap cost ~1 ms there. With a count,
     * a block with nothing stale (every block in pure postcopy) costs nothing, and sending a page touches
     * {@code stale} only while something is.
     */
    private final long[] staleCount;
    /** Target pages in all blocks. */
    final long totalPages;
    /** Target pages the destination lacks, as far as the sender knows (the preempt channel's are not taken off). */
    volatile long unsentPages;
    /** Requested pages ({@link PageRef}s) without a preempt channel: the reader adds, the sender serves them. */
    private final ConcurrentLinkedQueue<Long> requests = new ConcurrentLinkedQueue<>();
    /** The last page the preempt channel sent, for the sender's locality; {@link PageRef#NONE}: none. */
    volatile long lastOnChannel = PageRef.NONE;

    PageBook(List<RamBlock> blocks) {
        this.blocks = blocks;
        int n = blocks.size();
        infos = new RamBlockInfo[n];
        sent = new PageBitmap[n];
        stale = new PageBitmap[n];
        onChannel = new PageBitmap[n];
        staleCount = new long[n];
        shift = new int[n];
        long total = 0;
        for (int i = 0; i < n; i++) {
            RamBlock b = blocks.get(i);
            infos[i] = new RamBlockInfo(i, b.idstr(), b.usedLength(), b.pageSize());
            sent[i] = new PageBitmap(b.pages());
            stale[i] = new PageBitmap(b.pages());
            onChannel[i] = new PageBitmap(b.pages());
            shift[i] = Long.numberOfTrailingZeros(b.pageSize());
            total += b.usedLength() >>> TARGET_SHIFT;
        }
        totalPages = total;
        unsentPages = total;
    }

    int blockCount() {
        return infos.length;
    }

    int shift(int bi) {
        return shift[bi];
    }

    /** Target pages per page of block {@code bi}. */
    int targets(int bi) {
        return 1 << (shift[bi] - TARGET_SHIFT);
    }

    /** The index of the block named {@code idstr}, or -1. */
    int indexOf(String idstr) {
        int bi = -1;
        for (int i = 0; i < infos.length; i++) if (infos[i].idstr().equals(idstr)) bi = i;
        return bi;
    }

    // ---- the sender's and, for claims, the preempt channel's ----

    /** The first page of block {@code bi} at or after {@code from} that the destination lacks, or -1. */
    long nextUnsent(int bi, long from) {
        return sent[bi].nextClearBit(from);
    }

    /** Claims a page for sending: false if it was unclaimed (the caller sends it), true if already sent or claimed. */
    boolean claim(int bi, long page) {
        return sent[bi].testAndSet(page);
    }

    /**
     * Prefetch: claims the first page of {@code [from, to)} of block {@code bi} not sent yet (the caller sends it),
     * skipping those another thread claims meanwhile; -1 if none is left.
     */
    long claimNextUnsent(int bi, long from, long to) {
        for (long p = nextUnsent(bi, from); p >= 0 && p < to; p = nextUnsent(bi, p + 1)) {
            if (!claim(bi, p)) return p;
        }
        return -1;
    }

    /** The sender wrote the page on the main stream. */
    void markSent(int bi, long page) {
        sent[bi].set(page);
        if (staleCount[bi] != 0 && stale[bi].testAndClear(page)) staleCount[bi]--;
        unsentPages -= targets(bi);
    }

    /** With a preempt channel, under its lock: true if the page was already sent there; marks it so either way. */
    boolean claimOnChannel(int bi, long page) {
        return onChannel[bi].testAndSet(page);
    }

    /** With a preempt channel, under its lock: the page went there. */
    void markOnChannel(int bi, long page) {
        onChannel[bi].set(page);
    }

    /** Collects the pages written since the last scan: sent ones become stale, and all are unsent. */
    long scanDirty(DirtyTracker[] trackers) {
        long dirty = 0;
        for (int bi = 0; bi < infos.length; bi++) {
            final long host = blocks.get(bi).hostAddress();
            final int sh = shift[bi];
            final PageBitmap s = sent[bi], st = stale[bi];
            final int block = bi;
            long[] count = new long[1];
            trackers[bi].scan((start, end) -> {
                long from = (start - host) >>> sh, to = ((end - host) + (1L << sh) - 1) >>> sh;
                to = Math.min(to, s.size());
                for (long p = from; p < to; p++) {
                    if (s.testAndClear(p)) {
                        // a sent page is never stale (sending clears stale), so this sets a clear bit
                        st.set(p);
                        staleCount[block]++;
                        unsentPages += 1L << (sh - TARGET_SHIFT);
                    }
                }
                count[0] += to - from;
            });
            dirty += count[0];
        }
        return dirty;
    }

    /** The switch (postcopy_each_ram_send_discard): every run of stale pages becomes a discard, in target pages. */
    void discardStale(DiscardBatcher batcher) throws IOException {
        for (int bi = 0; bi < infos.length; bi++) {
            if (staleCount[bi] == 0) continue;
            PageBitmap st = stale[bi];
            long ratio = targets(bi);
            batcher.beginBlock(infos[bi].idstr(), 0);
            for (long p = st.nextSetBit(0); p >= 0; ) {
                long end = st.nextClearBit(p);
                if (end < 0) end = st.size();
                batcher.addRun(p * ratio, (end - p) * ratio);
                p = end >= st.size() ? -1 : st.nextSetBit(end);
            }
            batcher.endBlock();
            st.clearAll();
            staleCount[bi] = 0;
        }
    }

    /**
     * A resumed destination's received bitmaps (by block name, one for each): what was sent but never received goes
     * again, on either channel. Returns the target pages to send.
     */
    long retainReceived(Map<String, ByteBuffer> received) {
        long unsent = 0;
        for (int bi = 0; bi < infos.length; bi++) {
            int ratio = targets(bi);
            ByteBuffer bitmap = received.get(infos[bi].idstr());
            sent[bi].retainReceived(bitmap, ratio);
            onChannel[bi].clearAll();
            unsent += (sent[bi].size() - sent[bi].cardinality()) * ratio;
        }
        unsentPages = unsent;
        return unsent;
    }

    // ---- the request queue (no preempt channel) ----

    /** From the return-path reader. */
    void queueRequest(int bi, long page) {
        requests.add(PageRef.of(bi, page));
    }

    boolean requestsQueued() {
        return !requests.isEmpty();
    }

    /** The oldest queued request, or {@link PageRef#NONE}. */
    long pollRequest() {
        Long r = requests.poll();
        return r == null ? PageRef.NONE : r;
    }

    /** A resumed connection: what the lost one asked for is asked again if still missing. */
    void clearRequests() {
        requests.clear();
    }
}
