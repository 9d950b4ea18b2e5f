package io.postcopy.migration.internal.source;

import static io.postcopy.migration.internal.AbstractMigration.TARGET_PAGE;

import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.migration.internal.DeviceStates;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;

/**
 * The main stream's encoder and the RAM pages on it (the seed's {@code ram_save_target_page}): block pages as
 * PAGE/ZERO records read straight from the block's memory, inside RAM PART sections. A resumed connection gets a new
 * encoder ({@link #attach}); the bytes of the earlier ones still count.
 *
 * <p>Threads: the sender alone writes the main stream. {@link #writeBlockPage} reads only the block list, so the
 * return-path reader also uses it for the preempt channel's encoder (under that channel's lock). Any thread reads the
 * counters and {@link #bytes} for progress.
 */
final class RamWriter {
    /** Records per PART section (QEMU bounds a section by time; any bound works for the receiver). */
    private static final int RECORDS_PER_SECTION = 4096;

    private final PageBook book;
    private volatile StreamEncoder enc;
    private boolean partOpen;
    private int partRecords;
    /** Bytes written on connections before the current one. */
    private volatile long bytesBefore;
    /** Target pages sent on the main stream (single writer: the sender). */
    volatile long pages, zeroPages, postcopyPageBytes;

    RamWriter(PageBook book) {
        this.book = book;
    }

    /** The main stream: its encoder on the current connection (sender only, but for progress). */
    StreamEncoder enc() {
        return enc;
    }

    /** A new connection's encoder: no RAM section is open on it. */
    void attach(StreamEncoder e) {
        StreamEncoder old = enc;
        if (old != null) bytesBefore += old.position();
        enc = e;
        partOpen = false;
    }

    /** Bytes written on the main stream, all connections together. */
    long bytes() {
        StreamEncoder e = enc;
        return bytesBefore + (e == null ? 0 : e.position());
    }

    /** One block page as PAGE/ZERO records, in the open PART section (a new one if none is open). */
    void sendPage(int bi, long page, boolean postcopy) throws IOException {
        int targets = book.targets(bi);
        if (!partOpen) {
            enc.writeSectionPart(SectionType.PART, DeviceStates.RAM_SECTION_ID);
            partOpen = true;
            partRecords = 0;
        }
        int zeros = writeBlockPage(enc, bi, page);
        pages += targets - zeros;
        zeroPages += zeros;
        if (postcopy) postcopyPageBytes += (long) (targets - zeros) * TARGET_PAGE;
        book.markSent(bi, page);
        partRecords += targets;
        if (partRecords >= RECORDS_PER_SECTION) endPart();
    }

    /** One block page as PAGE/ZERO records on {@code e}, read straight from the block; returns the zero target pages. */
    int writeBlockPage(StreamEncoder e, int bi, long page) throws IOException {
        RamBlockInfo info = book.infos[bi];
        long off = page << book.shift(bi);
        long addr = book.blocks.get(bi).hostAddress() + off;
        int targets = book.targets(bi), zeros = 0;
        for (int k = 0; k < targets; k++, off += TARGET_PAGE, addr += TARGET_PAGE) {
            if (NativeMemory.isZero(addr, TARGET_PAGE)) {
                e.writeZero(info, off, 0);
                zeros++;
            } else {
                e.writePage(info, off, addr);
            }
        }
        return zeros;
    }

    /** Closes the open PART section, if any: before anything else goes on the main stream. */
    void endPart() throws IOException {
        if (!partOpen) return;
        enc.writeEos();
        enc.writeFooter(DeviceStates.RAM_SECTION_ID);
        partOpen = false;
    }
}
