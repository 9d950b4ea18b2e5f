package io.postcopy.migration.internal.destination;

import static io.postcopy.migration.internal.AbstractMigration.TARGET_PAGE;

import io.postcopy.codec.RamBlockInfo;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.migration.internal.Refused;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;

/**
 * Puts the pages of one connection into the blocks (the seed's {@code ram_load_postcopy} with its temporary page): a
 * staging area of our own memory and the one placement path, precopy loads before LISTEN and {@code UFFDIO_COPY} /
 * {@code ZEROPAGE} from then on. A page is a block index, a byte offset and a source address: no object per page.
 *
 * <p>Two ways to stage, one per kind of connection:
 * <ul>
 * <li>{@link #runs}, the main stream: contiguous pages of one block gathered into one placement of up to the staging
 * batch (zero pages into a run of up to 2 MiB), placed when the run breaks and whenever the stream thread flushes
 * (before a command, before it blocks on the socket);</li>
 * <li>{@link #hostPages}, the postcopy-preempt channel: small pages placed at once from the receive buffer, a huge page
 * gathered whole (the source sends a requested host page complete on one channel) and placed by itself.</li>
 * </ul>
 * One loader per connection, used by that connection's thread only (the stream thread, or the preempt channel's): a
 * huge page being gathered from one connection is never mixed with another's. It reads the destination's blocks and
 * fault service, published before the first page ({@code postcopy}, {@code listening} are volatile).
 */
final class PageLoader {
    private static final long MAX_ZERO_RUN = 2 << 20;

    private final Destination main;
    /** The main stream's largest run in bytes (at most one target page: no staging); 0 for the preempt channel. */
    private final long batch;
    /** The staging area's size: the batch, or the largest host page. */
    private final long stageSize;
    private long stageMem, stage;
    private int stageBlock = -1;
    private long stageOffset, stageLength;
    private boolean stageZero;
    private long fillPage;

    private PageLoader(Destination main, long batch, long stageSize) {
        this.main = main;
        this.batch = batch;
        this.stageSize = stageSize;
        if (stageSize > TARGET_PAGE) {
            // page-aligned: a whole huge page is placed with one UFFDIO_COPY straight from here
            stageMem = NativeMemory.allocate(stageSize + TARGET_PAGE);
            stage = (stageMem + TARGET_PAGE - 1) & -(long) TARGET_PAGE;
        }
    }

    /** The main stream's: runs of up to {@code batch} bytes. */
    static PageLoader runs(Destination main, int batch) {
        return new PageLoader(main, batch, batch);
    }

    /** The postcopy-preempt channel's, for {@code blocks}: whole host pages. */
    static PageLoader hostPages(Destination main, Iterable<RamBlockInfo> blocks) {
        long largest = 0;
        for (RamBlockInfo b : blocks) largest = Math.max(largest, b.pageSize());
        return new PageLoader(main, 0, largest);
    }

    // ---- the main stream: runs ----

    /** A page at {@code src} (our memory: the receive buffer): staged, or placed at once without staging. */
    void page(int bi, long offset, long src, int length) {
        if (batch <= TARGET_PAGE) {
            place(bi, offset, src, length, false);
            return;
        }
        if (stageLength > 0 && (stageZero || !continues(bi, offset) || stageLength + length > batch)) flush();
        if (stageLength == 0) begin(bi, offset, false);
        NativeMemory.copy(src, stage + stageLength, length);   // our memory to our memory
        stageLength += length;
    }

    /** A zero page, or one filled with {@code fill}: zero pages are gathered into runs, a filled one placed at once. */
    void zero(int bi, long offset, int fill, int length) {
        if (fill != 0) {
            flush();
            if (fillPage == 0) fillPage = NativeMemory.allocate(TARGET_PAGE);
            NativeMemory.fill(fillPage, length, (byte) fill);
            place(bi, offset, fillPage, length, false);
            return;
        }
        if (stageLength > 0 && (!stageZero || !continues(bi, offset) || stageLength + length > MAX_ZERO_RUN)) flush();
        if (stageLength == 0) begin(bi, offset, true);
        stageLength += length;
    }

    /** Places the run staged so far (the main stream's thread, before a command or a blocking read). */
    void flush() {
        if (stageLength == 0) return;
        long len = stageLength;
        stageLength = 0;
        place(stageBlock, stageOffset, stageZero ? 0 : stage, len, stageZero);
    }

    // ---- the postcopy-preempt channel: whole host pages ----

    /** One target page ({@code src} 0: zeroes): placed at once for small pages, gathered for huge ones. */
    void hostPagePart(RamBlockInfo block, long offset, long src, int length) throws Refused {
        long hps = block.pageSize();
        if (hps == length) {
            place(block.index(), offset, src, length, src == 0);
            return;
        }
        if (stageLength == 0) {
            if ((offset & (hps - 1)) != 0) throw notInHostPage(block, offset);
            begin(block.index(), offset, false);
        } else if (!continues(block.index(), offset)) {
            throw notInHostPage(block, offset);
        }
        if (src == 0) NativeMemory.fill(stage + stageLength, length, (byte) 0);
        else NativeMemory.copy(src, stage + stageLength, length);   // our memory to our memory
        stageLength += length;
        if (stageLength == hps) {
            stageLength = 0;
            place(stageBlock, stageOffset, stage, hps, false);
        }
    }

    /** At the channel's EOS: no host page may be left half gathered. */
    void checkNoPartialHostPage() throws Refused {
        if (stageLength != 0) {
            throw new Refused("EOS with host page 0x" + Long.toHexString(stageOffset) + " incomplete (" + stageLength + " bytes)");
        }
    }

    private Refused notInHostPage(RamBlockInfo block, long offset) {
        return new Refused("page " + block.idstr() + " 0x" + Long.toHexString(offset) + " does not continue "
                + (stageLength == 0 ? "at a host page boundary" : "host page 0x" + Long.toHexString(stageOffset)
                + " (" + stageLength + " of " + stageSize + " bytes)") + ": a requested host page comes whole on this channel");
    }

    // ---- both ----

    private boolean continues(int bi, long offset) {
        return stageBlock == bi && stageOffset + stageLength == offset;
    }

    private void begin(int bi, long offset, boolean zero) {
        stageBlock = bi;
        stageOffset = offset;
        stageZero = zero;
    }

    /** The one placement path: precopy loads before LISTEN, atomic placement (which wakes faulting threads) after. */
    private void place(int bi, long offset, long src, long length, boolean zero) {
        RamBlock b = main.local[bi];
        IncomingPostcopy p = main.postcopy;
        if (main.listening) {
            if (zero) p.placeZeroPages(b, offset, length);
            else p.placePages(b, offset, src, length);
        } else {
            if (zero) p.loadPrecopyZero(b, offset, length);
            else p.loadPrecopyPages(b, offset, src, length);
        }
    }

    /** Frees the staging memory; by the connection's thread, at its end. */
    void free() {
        if (stageMem != 0) NativeMemory.free(stageMem);
        stageMem = stage = 0;
        if (fillPage != 0) NativeMemory.free(fillPage);
        fillPage = 0;
    }
}
