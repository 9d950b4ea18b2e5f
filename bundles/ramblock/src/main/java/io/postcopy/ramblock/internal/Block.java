package io.postcopy.ramblock.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockInUseException;
import io.postcopy.ramblock.RamBlockLease;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import java.util.ArrayList;
import java.util.List;

/**
 * The registry's block: immutable coordinates plus the mapping it owns (null when adopted), and its leases.
 * The block's monitor guards the leases, the removal in progress and {@code released}.
 */
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
    /** Open leases, oldest first. */
    private final List<Lease> leases = new ArrayList<>(2);
    /** Set while a removal waits for the holders: no new lease is granted. */
    private boolean removing;

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
        checkDiscard(start, length);
        // The lock orders a discard before or after release(): never madvise an address that may be reused.
        synchronized (this) {
            if (released) throw new IllegalStateException("block " + idstr + " has been removed");
            if (mapping != null) mapping.discard(start, length);
            else NativeMemory.madvise(hostAddress + start, length, NativeMemory.MADV_DONTNEED);
        }
    }

    @Override
    public void discard(long[] offsets, long[] lengths, int n) {
        if (n < 0 || n > offsets.length || n > lengths.length) throw new IllegalArgumentException("discard of " + n + " ranges");
        for (int i = 0; i < n; i++) checkDiscard(offsets[i], lengths[i]);
        synchronized (this) {
            if (released) throw new IllegalStateException("block " + idstr + " has been removed");
            if (mapping != null) {
                mapping.discard(offsets, lengths, n);
            } else {
                long[] addrs = new long[n];
                for (int i = 0; i < n; i++) addrs[i] = hostAddress + offsets[i];
                NativeMemory.madvise(addrs, lengths, n, NativeMemory.MADV_DONTNEED);
            }
        }
    }

    @Override
    public RamBlockLease lease(String holder, Runnable letGo) {
        if (holder == null || holder.isEmpty()) throw new IllegalArgumentException("a lease needs the holder's name");
        synchronized (this) {
            if (released) throw new IllegalStateException("RAM block \"" + idstr + "\" has been removed");
            if (removing) throw new IllegalStateException("RAM block \"" + idstr + "\" is being removed");
            Lease l = new Lease(holder, letGo);
            leases.add(l);
            return l;
        }
    }

    @Override
    public synchronized List<String> holders() {
        List<String> h = new ArrayList<>(leases.size());
        for (Lease l : leases) h.add(l.holder);
        return h;
    }

    /**
     * Marks the block as being removed once nobody holds it, or by force: then every holder is asked to let go
     * and this waits up to {@code waitNanos} for them. On return the block is the caller's to release; on a
     * throw it is as before (leases are granted again).
     */
    void beginRemoval(boolean force, long waitNanos) {
        List<Lease> ask;
        synchronized (this) {
            if (released) throw new IllegalArgumentException("RAM block \"" + idstr + "\" has been removed");
            if (removing) throw new IllegalStateException("RAM block \"" + idstr + "\" is being removed by another caller");
            if (leases.isEmpty()) {
                removing = true;
                return;
            }
            if (!force) throw inUse("is in use by");
            removing = true;
            ask = new ArrayList<>(leases);
        }
        // outside the lock: a holder's letGo may close other leases of ours at once
        for (Lease l : ask) l.askToLetGo();
        long deadline = System.nanoTime() + waitNanos;
        synchronized (this) {
            try {
                while (!leases.isEmpty()) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        removing = false;
                        throw inUse("stays: still in use after " + waitNanos / 1_000_000 + " ms by");
                    }
                    wait(Math.max(1, left / 1_000_000));
                }
            } catch (InterruptedException e) {
                removing = false;
                Thread.currentThread().interrupt();
                throw inUse("stays: interrupted while waiting for");
            }
        }
    }

    /** Grants leases again after a removal that began did not go through. */
    synchronized void abortRemoval() {
        removing = false;
    }

    private RamBlockInUseException inUse(String what) {
        List<String> h = holders();
        return new RamBlockInUseException(idstr, h, "RAM block \"" + idstr + "\" " + what + " " + String.join(", ", h));
    }

    /** One hold on the memory; closed at most once. */
    private final class Lease implements RamBlockLease {
        final String holder;
        private Runnable letGo;     // guarded by Block.this; null once asked

        Lease(String holder, Runnable letGo) {
            this.holder = holder;
            this.letGo = letGo;
        }

        @Override public RamBlock block() { return Block.this; }

        @Override public String holder() { return holder; }

        void askToLetGo() {
            Runnable r;
            synchronized (Block.this) {
                r = letGo;
                letGo = null;
            }
            if (r == null) return;
            try {
                r.run();
            } catch (RuntimeException e) {
                System.getLogger(Block.class.getName()).log(System.Logger.Level.WARNING,
                        "holder " + holder + " of RAM block " + idstr + " failed to let go", e);
            }
        }

        @Override
        public void close() {
            synchronized (Block.this) {
                if (leases.remove(this)) Block.this.notifyAll();
                letGo = null;
            }
        }

        @Override
        public String toString() {
            return "lease on " + idstr + " by " + holder;
        }
    }

    /** Forgets the memory; unmaps it when owned. */
    synchronized void release() {
        if (released) return;
        if (!leases.isEmpty()) throw new IllegalStateException("release of " + idstr + " under open leases: " + leases);
        released = true;
        if (mapping != null) mapping.close();
    }

    @Override
    public String toString() {
        return String.format("RamBlock[%s, offset 0x%x, host 0x%x, used %d, max %d, page %d, %s]",
                idstr, offset, hostAddress, usedLength, maxLength, pageSize, backing);
    }
}
