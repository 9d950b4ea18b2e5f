package io.postcopy.fault.internal;

import io.postcopy.fault.PlacementBackend;
import io.postcopy.fault.PlacementContext;
import io.postcopy.fault.PostcopyException;
import io.postcopy.ramblock.PageBitmap;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.Userfaultfd;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * One block of one incoming migration: its bitmaps (received, requested), its temporary page and the
 * backend currently placing its pages. Placements hold the read side of {@link #swap}; switching backend
 * takes the write side, so a placement in flight always finishes on the backend it started on.
 */
final class BlockState implements PlacementContext {
    final int index;
    final RamBlock block;
    final long pageSize;
    final int pageShift;
    final PageBitmap received;
    final PageBitmap requested;
    private final Incoming incoming;

    final ReentrantReadWriteLock swap = new ReentrantReadWriteLock();
    private final ReentrantLock backendLock = new ReentrantLock();
    private final Condition backendChanged = backendLock.newCondition();
    volatile PlacementBackend backend;

    // written by the fault thread only
    volatile long faults, requests;

    private Mapping tmp;
    private long tmpHostPage = -1, tmpFill;

    BlockState(int index, RamBlock block, Incoming incoming) {
        this.index = index;
        this.block = block;
        this.pageSize = block.pageSize();
        this.pageShift = Long.numberOfTrailingZeros(pageSize);
        this.received = new PageBitmap(block.pages());
        this.requested = new PageBitmap(block.pages());
        this.incoming = incoming;
    }

    @Override public RamBlock block() { return block; }

    @Override public Userfaultfd uffd() { return incoming.uffd(); }

    @Override public boolean registered() { return incoming.registered(); }

    @Override
    public synchronized long tmpPage() {
        if (tmp == null) {
            tmp = block.backing() == RamBlock.Backing.HUGETLB
                    ? Mapping.hugetlb("postcopy-tmp-" + block.idstr(), pageSize)
                    : Mapping.anonymous(Math.max(pageSize, NativeMemory.pageSize()));
        }
        return tmp.address();
    }

    @Override public synchronized long tmpFill() { return tmpFill; }

    @Override public synchronized long tmpHostPage() { return tmpHostPage; }

    @Override
    public synchronized void setTmp(long hostPage, long fill) {
        tmpHostPage = hostPage;
        tmpFill = fill;
    }

    synchronized void freeTmp() {
        if (tmp != null) {
            tmp.close();
            tmp = null;
        }
        tmpHostPage = -1;
        tmpFill = 0;
    }

    @Override
    public void placed(long offset, long length, boolean zero) {
        long from = offset >>> pageShift, to = (offset + length) >>> pageShift;
        received.setRange(from, to);
        // the common case is a background page nobody faulted on: a few bit tests and out
        for (long p = from; p < to; p++) {
            if (requested.get(p)) {
                incoming.waiters.release(index, from, to, System.nanoTime());
                return;
            }
        }
    }

    @Override
    public void raced(long pages) {
        incoming.raced.add(pages);
    }

    /** Picks the highest-ranked backend that supports the block; switches only between placements. */
    void reselect(List<FaultServiceImpl.Ranked> ranked) {
        PlacementBackend best = null;
        for (FaultServiceImpl.Ranked r : ranked) {
            if (r.backend().supports(block)) {
                best = r.backend();
                break;
            }
        }
        if (best == backend) return;
        swap.writeLock().lock();
        try {
            PlacementBackend old = backend;
            if (old != null) {
                try {
                    old.cleanup(this);
                } catch (RuntimeException e) {
                    Incoming.LOG.warn("backend {} failed to clean up block {}", old.name(), block.idstr(), e);
                }
            }
            if (best != null) best.prepare(this);
            backend = best;
        } finally {
            swap.writeLock().unlock();
        }
        backendLock.lock();
        try {
            backendChanged.signalAll();
        } finally {
            backendLock.unlock();
        }
        Incoming.LOG.info("migration {}: block {} now placed by {}", incoming.id(), block.idstr(),
                best == null ? "no backend (placements wait)" : best.name());
    }

    /**
     * Locks the read side with a backend present and returns it. Waits (bounded) while no bound backend
     * supports the block, e.g. while a backend bundle is being updated.
     */
    PlacementBackend acquire(long waitNanos) {
        long deadline = System.nanoTime() + waitNanos;
        for (;;) {
            PlacementBackend b = backend;
            if (b != null) {
                swap.readLock().lock();
                if (backend == b) return b;
                swap.readLock().unlock();
                continue;
            }
            backendLock.lock();
            try {
                while (backend == null) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) throw new PostcopyException("no placement backend supports block " + block.idstr()
                            + " (" + block.backing() + ", page size " + pageSize + ")");
                    backendChanged.awaitNanos(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100)));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new PostcopyException("interrupted waiting for a placement backend for " + block.idstr());
            } finally {
                backendLock.unlock();
            }
        }
    }

    void releaseBackend() {
        swap.readLock().unlock();
    }
}
