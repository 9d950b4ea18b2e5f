package io.postcopy.codec;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The RAM blocks a receiver owns, with their used lengths and page sizes. Decoders given one refuse a
 * MEM_SIZE list naming a block it does not have (or with another length), and every page, discard range
 * and page request outside its block: nothing out of range ever leaves the codec. Immutable, thread-safe.
 */
public final class BlockValidator {
    private final List<RamBlockInfo> blocks;
    private final Map<String, RamBlockInfo> byName;
    private final int targetPageSize;

    public BlockValidator(List<RamBlockInfo> blocks) {
        this(blocks, Wire.DEFAULT_TARGET_PAGE_SIZE);
    }

    public BlockValidator(List<RamBlockInfo> blocks, int targetPageSize) {
        this.blocks = List.copyOf(blocks);
        this.targetPageSize = targetPageSize;
        Map<String, RamBlockInfo> m = new HashMap<>();
        for (RamBlockInfo b : this.blocks) {
            if (m.put(b.idstr(), b) != null) {
                throw new IllegalArgumentException("duplicate block " + b.idstr());
            }
            if (b.usedLength() % targetPageSize != 0 || b.pageSize() % targetPageSize != 0) {
                throw new IllegalArgumentException("block " + b.idstr() + " not a whole number of target pages");
            }
        }
        this.byName = Collections.unmodifiableMap(m);
    }

    /** Convenience: blocks from (name, used length) pairs, all with page size {@code pageSize}. */
    public static BlockValidator of(long pageSize, Object... nameLengthPairs) {
        List<RamBlockInfo> l = new ArrayList<>();
        for (int i = 0; i + 1 < nameLengthPairs.length; i += 2) {
            l.add(new RamBlockInfo(l.size(), (String) nameLengthPairs[i], ((Number) nameLengthPairs[i + 1]).longValue(), pageSize));
        }
        return new BlockValidator(l);
    }

    public List<RamBlockInfo> blocks() {
        return blocks;
    }

    public int targetPageSize() {
        return targetPageSize;
    }

    /** @return the block, or {@code null} */
    public RamBlockInfo block(String name) {
        return byName.get(name);
    }

    private RamBlockInfo require(long offset, String field, String name) throws CodecException {
        RamBlockInfo b = byName.get(name);
        if (b == null) {
            throw new CodecException(CodecException.Kind.OUT_OF_BLOCK, offset, field, name, "a known RAM block " + byName.keySet());
        }
        return b;
    }

    /** A block announced by the sender's MEM_SIZE list must exist here with the same used length. */
    public RamBlockInfo checkStreamBlock(long offset, String name, long usedLength) throws CodecException {
        RamBlockInfo b = require(offset, "MEM_SIZE block idstr", name);
        if (b.usedLength() != usedLength) {
            throw new CodecException(CodecException.Kind.OUT_OF_BLOCK, offset, "used length of " + name, usedLength,
                    String.valueOf(b.usedLength()));
        }
        return b;
    }

    /** A page of {@code length} bytes at {@code start} must lie in {@code block}. */
    public static void checkPage(long offset, RamBlockInfo block, long start, long length) throws CodecException {
        if (start < 0 || start > block.usedLength() - length) {
            throw new CodecException(CodecException.Kind.OUT_OF_BLOCK, offset, "page offset in " + block.idstr(),
                    "0x" + Long.toHexString(start), "< 0x" + Long.toHexString(block.usedLength()));
        }
    }

    /** A discard range must be non-empty, page aligned (the block's page size) and inside the block. */
    public void checkDiscard(long offset, String name, long start, long length) throws CodecException {
        checkRange(offset, require(offset, "discard block", name), start, length, "discard");
    }

    /** A page request must name a block, be aligned, inside it, and ask for exactly one page of the block. */
    public void checkRequest(long offset, String name, long start, long length) throws CodecException {
        RamBlockInfo b = require(offset, "request block", name);
        if (length != b.pageSize()) {
            throw new CodecException(CodecException.Kind.OUT_OF_BLOCK, offset, "request length", length,
                    b.pageSize() + " (page size of " + name + ")");
        }
        checkRange(offset, b, start, length, "request");
    }

    static void checkRange(long offset, RamBlockInfo b, long start, long length, String what) throws CodecException {
        long align = b.pageSize();
        if (length <= 0 || length % align != 0) {
            throw new CodecException(CodecException.Kind.OUT_OF_BLOCK, offset, what + " length", length,
                    "a positive multiple of " + align + " (page size of " + b.idstr() + ")");
        }
        if (start < 0 || start % align != 0) {
            throw new CodecException(CodecException.Kind.OUT_OF_BLOCK, offset, what + " start", start,
                    "a non-negative multiple of " + align);
        }
        if (start > b.usedLength() - length) {
            throw new CodecException(CodecException.Kind.OUT_OF_BLOCK, offset, what + " end",
                    "0x" + Long.toHexString(start) + "+0x" + Long.toHexString(length),
                    "<= 0x" + Long.toHexString(b.usedLength()) + " (used length of " + b.idstr() + ")");
        }
    }
}
