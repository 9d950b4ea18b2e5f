package io.postcopy.ramblock.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;

/** The registry's block: immutable coordinates plus the mapping it owns (null when adopted). */
final class Block implements RamBlock {
    private final String idstr;
    private final long offset;
    private final long hostAddress;
    private final long usedLength;
    private final long maxLength;
    private final long pageSize;
    private final Backing backing;
    private final Mapping mapping;
    /** Set under the block's lock once it is gone, so that a discard never reaches memory we no longer own. */
    private boolean released;

    Block(String idstr, long offset, long hostAddress, long usedLength, long maxLength, long pageSize,
            Backing backing, Mapping mapping) {
        this.idstr = idstr;
        this.offset = offset;
        this.hostAddress = hostAddress;
        this.usedLength = usedLength;
        this.maxLength = maxLength;
        this.pageSize = pageSize;
        this.backing = backing;
        this.mapping = mapping;
    }

    @Override public String idstr() { return idstr; }
    @Override public long offset() { return offset; }
    @Override public long hostAddress() { return hostAddress; }
    @Override public long usedLength() { return usedLength; }
    @Override public long maxLength() { return maxLength; }
    @Override public long pageSize() { return pageSize; }
    @Override public Backing backing() { return backing; }
    @Override public int fd() { return mapping == null ? -1 : mapping.fd(); }

    long end() {
        return hostAddress + maxLength;
    }

    @Override
    public void discard(long start, long length) {
        if (start < 0 || length <= 0 || start > usedLength - length)
            throw new IllegalArgumentException(String.format("discard [%d, +%d) outside block %s of %d used bytes",
                    start, length, idstr, usedLength));
        if (start % pageSize != 0 || length % pageSize != 0)
            throw new IllegalArgumentException(String.format("discard [%d, +%d) in block %s is not aligned to its page size %d",
                    start, length, idstr, pageSize));
        // The lock orders a discard before or after release(): never madvise an address that may be reused.
        synchronized (this) {
            if (released) throw new IllegalStateException("block " + idstr + " has been removed");
            if (mapping != null) mapping.discard(start, length);
            else NativeMemory.madvise(hostAddress + start, length, NativeMemory.MADV_DONTNEED);
        }
    }

    /** Forgets the memory; unmaps it when owned. */
    synchronized void release() {
        if (released) return;
        released = true;
        if (mapping != null) mapping.close();
    }

    @Override
    public String toString() {
        return String.format("RamBlock[%s, offset 0x%x, host 0x%x, used %d, max %d, page %d, %s]",
                idstr, offset, hostAddress, usedLength, maxLength, pageSize, backing);
    }
}
