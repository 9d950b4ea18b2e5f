package io.postcopy.migration.internal.source;

import static io.postcopy.migration.internal.AbstractMigration.TARGET_PAGE;

import io.postcopy.codec.StreamEncoder;
import io.postcopy.codec.Wire;
import java.io.IOException;
import java.nio.channels.ByteChannel;

/**
 * QEMU's postcopy-preempt channel, the source's side: requested pages go there at once, written by the return-path
 * reader itself (QEMU 7.2 lets its migration thread do it, behind whatever it is writing).
 *
 * <p>A requested page the main stream already sent is still on its way: the destination faults only on pages it does
 * not have. It is sent again here, once (QEMU skips it, so the guest waits for the bulk bytes ahead of it: up to the
 * socket buffers' depth). The destination keeps whichever copy lands first; the other finds the page present (EEXIST)
 * and is dropped. The guest is paused, so both copies are equal. This is what lets the main stream use deep socket
 * buffers without making requested pages wait.
 *
 * <p>Right after a requested page come the pages its block's {@link PrefetchWindow} learned the guest reads next,
 * those not sent yet only: each is claimed like a requested page, so the main stream never sends it, and a later
 * request for it while on its way gets nothing more (as a repeated request). They are ordinary RAM records.
 *
 * <p>Threads: the return-path reader writes pages ({@link #send}); the sender attaches the channel (setup, resume) and
 * writes its EOS at the end ({@link #end}). Claiming a page and writing it happen under this object's lock, so the EOS
 * follows every claimed page. Any thread reads the counters.
 */
final class PreemptSender {
    private final PageBook book;
    private final RamWriter writer;
    /** What to push after a requested page; used under this object's lock. */
    private final PrefetchWindow prefetch;
    /** Null until the channel is opened: then requests come here. Written under the lock. */
    private volatile StreamEncoder enc;
    private boolean ended;
    /**
     * Target pages first sent here; requested pages sent again here while in flight on the main stream; pages served
     * here (requested, and pushed after them); target pages pushed after requested ones.
     */
    volatile long pages, zeroPages, resent, requestedPages, prefetchedPages;

    PreemptSender(PageBook book, RamWriter writer, PrefetchWindow prefetch) {
        this.book = book;
        this.writer = writer;
        this.prefetch = prefetch;
    }

    /** Whether the migration has the channel (opened once, and again on each resume). */
    boolean open() {
        return enc != null;
    }

    /** The channel's bytes (silent, its magic and token written) from now on. */
    void attach(ByteChannel io) {
        long largest = TARGET_PAGE;
        for (var i : book.infos) largest = Math.max(largest, i.pageSize());
        synchronized (this) {
            enc = new StreamEncoder(io, (int) Math.max(72 * 1024, largest + 64 * 1024), Wire.DEFAULT_TARGET_PAGE_SIZE);
        }
    }

    /** Bytes written on the current channel. */
    long position() {
        StreamEncoder e = enc;
        return e == null ? 0 : e.position();
    }

    /**
     * The return-path reader: claims the requested page and writes it here at once (flushed on its own, so it never
     * waits for the pushed pages), then the pages prefetch pushes after it.
     */
    synchronized void send(int bi, long page) throws IOException {
        if (ended) return;     // everything is sent
        boolean inFlight = book.claim(bi, page);
        // already sent here: a repeated request gets nothing more (prefetch still learns from it)
        if (!inFlight || !book.claimOnChannel(bi, page)) {
            int targets = book.targets(bi);
            int zeros = writer.writeBlockPage(enc, bi, page);
            enc.flush();
            if (inFlight) {
                resent++;
            } else {
                book.markOnChannel(bi, page);      // here now: a repeated request gets nothing more either
                pages += targets - zeros;
                zeroPages += zeros;
            }
            requestedPages++;
            book.lastOnChannel = PageRef.of(bi, page);
        }
        int ahead = prefetch.request(bi, page);
        if (ahead > 0 && push(bi, page + 1, page + 1 + ahead)) enc.flush();
    }

    /**
     * The pages of {@code [from, to)} of block {@code bi} not sent yet, claimed and written (the main stream's scan
     * goes on after the last); whether there were any.
     */
    private boolean push(int bi, long from, long to) throws IOException {
        int targets = book.targets(bi);
        long last = -1;
        for (long p = book.claimNextUnsent(bi, from, to); p >= 0; p = book.claimNextUnsent(bi, p + 1, to)) {
            book.markOnChannel(bi, p);
            int zeros = writer.writeBlockPage(enc, bi, p);
            pages += targets - zeros;
            zeroPages += zeros;
            prefetchedPages += targets;
            requestedPages++;
            last = p;
        }
        if (last < 0) return false;
        book.lastOnChannel = PageRef.of(bi, last);
        return true;
    }

    /** The sender, after the main stream's EOF: the channel's EOS, after every page a request claimed. */
    void end() throws IOException {
        if (enc == null) return;
        synchronized (this) {
            ended = true;
            enc.writeEos();
            enc.flush();
        }
    }
}
