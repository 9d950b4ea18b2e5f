package io.postcopy.ramblock.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlock.Backing;
import io.postcopy.ramblock.RamBlockInUseException;
import io.postcopy.ramblock.RamBlockListener;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The registry, named after the seed's {@code ram_list}. Readers load one immutable {@link Snapshot} from a
 * volatile field and never lock; writers build a new snapshot under {@code this} and publish it.
 */
public final class RamList implements RamBlockRegistry {
    private static final System.Logger LOG = System.getLogger(RamList.class.getName());

    /** One published state. Arrays are never modified after publication. */
    private static final class Snapshot {
        static final Snapshot EMPTY = new Snapshot(new Block[0]);

        /** In RAM-offset (creation) order. */
        final Block[] ordered;
        /** Sorted by host address; {@code starts[i] == byHost[i].hostAddress()}, kept apart for a dense search. */
        final Block[] byHost;
        final long[] starts;
        final Map<String, Block> byName;
        final List<RamBlock> view;

        Snapshot(Block[] ordered) {
            this.ordered = ordered;
            this.byHost = ordered.clone();
            Arrays.sort(byHost, (a, b) -> Long.compareUnsigned(a.hostAddress(), b.hostAddress()));
            this.starts = new long[byHost.length];
            for (int i = 0; i < byHost.length; i++) starts[i] = byHost[i].hostAddress();
            Map<String, Block> names = new HashMap<>();
            for (Block b : ordered) names.put(b.idstr(), b);
            this.byName = Map.copyOf(names);
            this.view = Collections.unmodifiableList(Arrays.asList((RamBlock[]) ordered));
        }
    }

    private volatile Snapshot snapshot = Snapshot.EMPTY;
    private final List<RamBlockListener> listeners = new CopyOnWriteArrayList<>();
    /** Next free offset in the global RAM address space; removed blocks leave holes, as offsets must stay stable. */
    private long nextOffset;

    @Override
    public RamBlock create(String idstr, long usedLength, long maxLength, Backing backing) {
        RamBlock.checkIdstr(idstr);
        if (backing == null || backing == Backing.ADOPTED)
            throw new IllegalArgumentException("create needs an owned backing, not " + backing + "; use adopt");
        long pageSize = backing == Backing.HUGETLB ? NativeMemory.hugePageSize() : NativeMemory.pageSize();
        if (pageSize == 0) throw new IllegalArgumentException("block " + idstr + ": the kernel has no huge pages");
        checkLengths(idstr, usedLength, maxLength, pageSize);
        synchronized (this) {
            checkNameFree(idstr);
            Mapping mapping;
            switch (backing) {
                case ANONYMOUS: mapping = Mapping.anonymous(maxLength); break;
                case MEMFD: mapping = Mapping.memfd(memfdName(idstr), maxLength); break;
                default: mapping = Mapping.hugetlb(memfdName(idstr), maxLength);
            }
            Block b = new Block(idstr, align(nextOffset, pageSize), mapping.address(), usedLength, maxLength,
                    pageSize, backing, mapping);
            try {
                // A fresh mapping can only overlap a block if that block was adopted over unmapped memory.
                checkNoOverlap(b);
            } catch (IllegalArgumentException e) {
                mapping.close();
                throw e;
            }
            publishAdded(b);
            return b;
        }
    }

    @Override
    public RamBlock adopt(String idstr, long hostAddress, long length, long pageSize) {
        RamBlock.checkIdstr(idstr);
        if (pageSize <= 0 || Long.bitCount(pageSize) != 1)
            throw new IllegalArgumentException("block " + idstr + ": page size " + pageSize + " is not a power of two");
        // User-space addresses on x86_64 are below 2^47: positive, and adding a length cannot wrap.
        if (hostAddress <= 0 || hostAddress % pageSize != 0)
            throw new IllegalArgumentException(String.format("block %s: host address 0x%x is not a user address aligned to %d",
                    idstr, hostAddress, pageSize));
        checkLengths(idstr, length, length, pageSize);
        if (hostAddress + length < 0)
            throw new IllegalArgumentException(String.format("block %s: 0x%x + %d is past the address space", idstr, hostAddress, length));
        synchronized (this) {
            checkNameFree(idstr);
            Block b = new Block(idstr, align(nextOffset, pageSize), hostAddress, length, length, pageSize,
                    Backing.ADOPTED, null);
            checkNoOverlap(b);
            publishAdded(b);
            return b;
        }
    }

    @Override
    public RamBlock remove(String idstr) {
        return remove(idstr, false, 0);
    }

    @Override
    public RamBlock remove(String idstr, java.time.Duration wait) {
        return remove(idstr, true, Math.max(0, wait.toNanos()));
    }

    private RamBlock remove(String idstr, boolean force, long waitNanos) {
        Block b = snapshot.byName.get(idstr);
        if (b == null) throw new IllegalArgumentException("no RAM block named \"" + idstr + "\"; have "
                + snapshot.byName.keySet());
        // Not under the registry's lock: waiting for the holders must not stop other blocks from coming and going.
        b.beginRemoval(force, waitNanos);
        try {
            synchronized (this) {
                Snapshot s = snapshot;
                Block[] ordered = new Block[s.ordered.length - 1];
                int j = 0;
                for (Block x : s.ordered) if (x != b) ordered[j++] = x;
                snapshot = new Snapshot(ordered);
                // Listeners run while the memory is still mapped, so that they can unregister it from a userfaultfd.
                for (RamBlockListener l : listeners) notify(l, b, false);
            }
        } catch (RuntimeException | Error e) {
            b.abortRemoval();
            throw e;
        }
        b.release();
        return b;
    }

    @Override
    public void removeAll() {
        RamBlockInUseException stayed = null;
        java.util.Set<Block> kept = new java.util.HashSet<>();
        while (true) {
            Block next = null;
            Block[] ordered = snapshot.ordered;
            for (int i = ordered.length - 1; i >= 0 && next == null; i--) if (!kept.contains(ordered[i])) next = ordered[i];
            if (next == null) break;
            try {
                remove(next.idstr(), true, REMOVE_ALL_WAIT.toNanos());
            } catch (RamBlockInUseException e) {
                LOG.log(Level.ERROR, e.getMessage() + "; it stays mapped");
                kept.add(next);
                if (stayed == null) stayed = e;
            } catch (IllegalArgumentException | IllegalStateException raced) {
                kept.add(next);     // removed, or being removed, by another thread
            }
        }
        if (stayed != null) throw stayed;
    }

    @Override
    public List<RamBlock> blocks() {
        return snapshot.view;
    }

    @Override
    public RamBlock byName(String idstr) {
        return snapshot.byName.get(idstr);
    }

    @Override
    public RamBlock blockOf(long hostAddress) {
        Snapshot s = snapshot;
        long[] starts = s.starts;
        // The last block starting at or below the address (unsigned order, as addresses are).
        int lo = 0, hi = starts.length - 1, found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(starts[mid], hostAddress) <= 0) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (found < 0) return null;
        Block b = s.byHost[found];
        return b.contains(hostAddress) ? b : null;
    }

    @Override
    public void addListener(RamBlockListener listener) {
        synchronized (this) {
            // Under the writer lock: the listener sees every block exactly once, whatever other threads do.
            listeners.add(listener);
            for (Block b : snapshot.ordered) notify(listener, b, true);
        }
    }

    @Override
    public void removeListener(RamBlockListener listener) {
        listeners.remove(listener);
    }

    private void publishAdded(Block b) {
        Snapshot s = snapshot;
        Block[] ordered = Arrays.copyOf(s.ordered, s.ordered.length + 1);
        ordered[s.ordered.length] = b;
        snapshot = new Snapshot(ordered);
        nextOffset = b.offset() + b.maxLength();
        for (RamBlockListener l : listeners) notify(l, b, true);
    }

    private static void notify(RamBlockListener l, RamBlock b, boolean added) {
        try {
            if (added) l.blockAdded(b);
            else l.blockRemoved(b);
        } catch (RuntimeException e) {
            // One faulty listener must not stop the others nor undo the change.
            LOG.log(Level.WARNING, "RAM block listener " + l + " failed on " + (added ? "add" : "remove") + " of "
                    + b.idstr(), e);
        }
    }

    private void checkNameFree(String idstr) {
        if (snapshot.byName.containsKey(idstr))
            throw new IllegalArgumentException("a RAM block named \"" + idstr + "\" already exists");
    }

    private void checkNoOverlap(Block b) {
        for (Block x : snapshot.ordered) {
            if (Long.compareUnsigned(b.hostAddress(), x.end() - 1) <= 0
                    && Long.compareUnsigned(x.hostAddress(), b.end() - 1) <= 0)
                throw new IllegalArgumentException(String.format("block %s [0x%x, 0x%x) overlaps block %s [0x%x, 0x%x)",
                        b.idstr(), b.hostAddress(), b.end(), x.idstr(), x.hostAddress(), x.end()));
        }
    }

    private static void checkLengths(String idstr, long used, long max, long pageSize) {
        if (used <= 0 || used > max || used % pageSize != 0 || max % pageSize != 0)
            throw new IllegalArgumentException(String.format(
                    "block %s: used %d and max %d must be positive multiples of the page size %d, used <= max",
                    idstr, used, max, pageSize));
    }

    private static long align(long value, long pageSize) {
        return (value + pageSize - 1) & -pageSize;
    }

    /** memfd names are at most 249 bytes: keep the idstr when it fits (it shows in /proc/self/maps). */
    private static String memfdName(String idstr) {
        return idstr.getBytes(StandardCharsets.UTF_8).length <= 240 ? "ram:" + idstr : "ram-block";
    }

    @Override
    public String toString() {
        return "RamList" + new ArrayList<>(snapshot.view);
    }
}
