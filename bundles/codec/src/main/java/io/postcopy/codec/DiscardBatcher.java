package io.postcopy.codec;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The seed's {@code PostcopyDiscardState} ({@code postcopy_discard_send_init / _range / _finish}): per RAM
 * block, takes runs of target pages and emits {@code POSTCOPY_RAM_DISCARD} commands of at most
 * {@link Wire#MAX_DISCARDS_PER_COMMAND} byte ranges, flushing when 12 are pending and at the block's end.
 * Counts ranges and commands. Not thread-safe.
 */
public final class DiscardBatcher {

    /** A run iterator over a page bitmap: fills {@code run[0]} = start page, {@code run[1]} = length. */
    @FunctionalInterface
    public interface RunSource {
        /** @return false when there are no more runs */
        boolean next(long[] run);
    }

    private final DiscardSink sink;
    private final long targetPageSize;
    private String block;
    private long bitmapOffset;
    private final long[] starts = new long[Wire.MAX_DISCARDS_PER_COMMAND];
    private final long[] lengths = new long[Wire.MAX_DISCARDS_PER_COMMAND];
    private int pending;
    private long ranges;
    private long commands;
    private long blockRanges;

    public DiscardBatcher(DiscardSink sink) {
        this(sink, Wire.DEFAULT_TARGET_PAGE_SIZE);
    }

    public DiscardBatcher(DiscardSink sink, long targetPageSize) {
        this.sink = sink;
        this.targetPageSize = targetPageSize;
    }

    /**
     * {@code postcopy_discard_send_init}: starts a block.
     *
     * @param bitmapOffsetPages page number of the block's first page in the bitmap the runs come from
     *                          (0 for per-block bitmaps, as in QEMU 7.2)
     */
    public void beginBlock(String name, long bitmapOffsetPages) {
        if (block != null) {
            throw new IllegalStateException("block " + block + " not finished");
        }
        if (name == null || name.isEmpty() || name.length() > 255) {
            throw new IllegalArgumentException("block name must have 1..255 characters");
        }
        block = name;
        bitmapOffset = bitmapOffsetPages;
        blockRanges = 0;
    }

    /** {@code postcopy_discard_send_range}: one run of {@code lengthPages} pages from {@code startPage}. */
    public void addRun(long startPage, long lengthPages) throws IOException {
        if (block == null) {
            throw new IllegalStateException("no block");
        }
        if (lengthPages <= 0 || startPage < bitmapOffset) {
            throw new IllegalArgumentException("bad run " + startPage + "+" + lengthPages);
        }
        starts[pending] = Math.multiplyExact(startPage - bitmapOffset, targetPageSize);
        lengths[pending] = Math.multiplyExact(lengthPages, targetPageSize);
        pending++;
        ranges++;
        blockRanges++;
        if (pending == Wire.MAX_DISCARDS_PER_COMMAND) {
            send();
        }
    }

    /** Every run of {@code runs}. */
    public void addRuns(RunSource runs) throws IOException {
        long[] run = new long[2];
        while (runs.next(run)) {
            addRun(run[0], run[1]);
        }
    }

    /** {@code postcopy_discard_send_finish}: sends what is pending and closes the block. */
    public void endBlock() throws IOException {
        if (block == null) {
            throw new IllegalStateException("no block");
        }
        if (pending > 0) {
            send();
        }
        block = null;
    }

    /** Convenience: begin, all runs, end. */
    public void discardBlock(String name, long bitmapOffsetPages, RunSource runs) throws IOException {
        beginBlock(name, bitmapOffsetPages);
        addRuns(runs);
        endBlock();
    }

    private void send() throws IOException {
        List<DiscardRange> l = new ArrayList<>(pending);
        for (int i = 0; i < pending; i++) {
            l.add(new DiscardRange(starts[i], lengths[i]));
        }
        pending = 0;
        commands++;
        sink.send(new Command.PostcopyRamDiscard(block, l));
    }

    /** Ranges taken so far (all blocks). */
    public long rangeCount() {
        return ranges;
    }

    /** Commands sent so far (all blocks). */
    public long commandCount() {
        return commands;
    }

    /** Ranges taken in the current (or last) block. */
    public long blockRangeCount() {
        return blockRanges;
    }
}
