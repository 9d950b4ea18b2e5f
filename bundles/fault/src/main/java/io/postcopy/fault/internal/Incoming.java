package io.postcopy.fault.internal;

import io.postcopy.fault.BlockStatistics;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.IncomingState;
import io.postcopy.fault.MissingPages;
import io.postcopy.fault.PageRequester;
import io.postcopy.fault.PlacementBackend;
import io.postcopy.fault.PostcopyException;
import io.postcopy.policy.BalloonInhibitor;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockLease;
import io.postcopy.uffd.EventFd;
import io.postcopy.uffd.HostSupportReport;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.RegisterMode;
import io.postcopy.uffd.UffdException;
import io.postcopy.uffd.UffdFeature;
import io.postcopy.uffd.UffdIoctl;
import io.postcopy.uffd.Userfaultfd;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** One incoming postcopy migration: the lifecycle of the seed's destination side. */
final class Incoming implements IncomingPostcopy {
    static final Logger LOG = LoggerFactory.getLogger(Incoming.class);
    static final long TARGET_PAGE = 4096;

    private final String id;
    private final FaultServiceImpl service;
    private final PageRequester requester;
    final BlockState[] states;
    private final List<RamBlock> blocks;
    final Waiters waiters;

    private volatile IncomingState state = IncomingState.NONE;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private volatile Userfaultfd uffd;
    private volatile boolean registered, listening;
    private EventFd quit;
    private Thread faultThread;
    private BalloonInhibitor.Inhibition balloon;
    private boolean thpDisabled, mlockDropped;
    private Set<UffdFeature> hostFeatures = EnumSet.noneOf(UffdFeature.class);
    private MissingPages finalMissing;

    final LongAdder pagesPlaced = new LongAdder(), zeroPagesPlaced = new LongAdder(), bytesPlaced = new LongAdder(),
            raced = new LongAdder();
    // fault thread only
    volatile long faults, requests, dedupReceived, dedupRequested;
    private volatile long discards, discardedBytes;

    /** Held from creation until cleanup has stopped every placement: the blocks stay mapped while we may touch them. */
    private final List<RamBlockLease> leases = new ArrayList<>();
    /** Set by cleanup before it waits for the placements in flight; a placement that sees it touches nothing. */
    private volatile boolean closing;

    Incoming(String id, List<RamBlock> blocks, PageRequester requester, FaultServiceImpl service) {
        this.id = id;
        this.service = service;
        this.requester = requester;
        this.blocks = List.copyOf(blocks);
        this.states = new BlockState[blocks.size()];
        for (int i = 0; i < states.length; i++) states[i] = new BlockState(i, blocks.get(i), this);
        this.waiters = new Waiters(states.length);
        try {
            for (RamBlock b : this.blocks) {
                leases.add(b.lease("migration " + id, () -> fail(new PostcopyException("RAM block " + b.idstr()
                        + " is being removed by force"))));
            }
        } catch (IllegalStateException e) {
            releaseLeases();
            throw new PostcopyException("migration " + id + ": " + e.getMessage());
        }
    }

    private void releaseLeases() {
        for (RamBlockLease l : leases) l.close();
        leases.clear();
    }

    /**
     * Takes block {@code s}'s placement lock and its backend, unless cleanup has begun: cleanup waits for every
     * placement holding the lock, so block memory is never touched once it has begun.
     */
    private PlacementBackend enterPlacement(BlockState s, String what) {
        PlacementBackend b = s.acquire(service.backendWaitNanos());
        if (closing) {
            s.releaseBackend();
            throw new PostcopyException("migration " + id + ": " + what + " refused: the migration is ending");
        }
        return b;
    }

    @Override public String id() { return id; }

    @Override public IncomingState state() { return state; }

    @Override public List<RamBlock> blocks() { return blocks; }

    Userfaultfd uffd() { return uffd; }

    boolean registered() { return registered; }

    private void expect(String op, IncomingState... allowed) {
        IncomingState s = state;
        for (IncomingState a : allowed) if (s == a) return;
        throw new PostcopyException("migration " + id + ": " + op + " is not allowed in state " + s
                + " (allowed in " + java.util.Arrays.toString(allowed) + ")");
    }

    private void enter(IncomingState next) {
        LOG.info("migration {}: postcopy {} -> {}", id, state, next);
        state = next;
    }

    BlockState stateOf(RamBlock block) {
        for (BlockState s : states) if (s.block == block) return s;
        for (BlockState s : states) if (s.block.idstr().equals(block.idstr())) return s;
        throw new PostcopyException("migration " + id + ": block " + block.idstr() + " is not part of this migration");
    }

    private BlockState stateOf(String idstr) {
        for (BlockState s : states) if (s.block.idstr().equals(idstr)) return s;
        throw new PostcopyException("migration " + id + ": no block named \"" + idstr + "\" in this migration");
    }

    /** Checks {@code [offset, offset+length)} against the block before anything touches memory. */
    static void checkRange(String what, BlockState s, long offset, long length, long align) {
        RamBlock b = s.block;
        if (length <= 0 || offset < 0 || offset % align != 0 || length % align != 0 || offset > b.usedLength() - length)
            throw new PostcopyException(String.format(
                    "%s of block %s refused: offset %d length %d must be %d-aligned and inside [0, %d)",
                    what, b.idstr(), offset, length, align, b.usedLength()));
    }

    // ---- ADVISE ----

    @Override
    public synchronized void advise() {
        expect("advise", IncomingState.NONE);
        HostSupportReport report = service.probe(TARGET_PAGE);
        if (!report.supported())
            throw new PostcopyException("migration " + id + ": postcopy not supported by this host: " + report.failures());
        hostFeatures = EnumSet.copyOf(report.features().isEmpty() ? EnumSet.noneOf(UffdFeature.class) : report.features());
        // RAM must be truly empty: anything written at init (ROMs, tables) comes again from the source
        for (BlockState s : states) s.block.discard(0, s.block.usedLength());
        // Register now, not at LISTEN: precopy pages are then placed with UFFDIO_COPY, which allocates and fills
        // pages inside the kernel. A plain copy takes one user-mode page fault per fresh 4 KiB page, and those
        // measured ~15 us each on these VMs (UFFDIO_COPY of 64 KiB runs: ~0.36 s per GiB, a plain copy: 3-5 s).
        // Nothing touches the blocks before RUN; the fault thread starts here all the same (QEMU starts it at
        // LISTEN): starting a thread at real-time priority took 1.4-3.4 ms of LISTEN, inside the downtime. A fault
        // before LISTEN would be a bug elsewhere; it becomes a request the source refuses, not a silent hang.
        mlockDropped = service.memoryLock().beforeUserfault().changed();
        try {
            register();
            startFaultThread();
        } catch (RuntimeException e) {
            teardownUffd();
            throw e;
        }
        enter(IncomingState.ADVISE);
    }

    private void register() {
        Userfaultfd u = Userfaultfd.open(Userfaultfd.O_CLOEXEC | Userfaultfd.O_NONBLOCK);
        uffd = u;
        EnumSet<UffdFeature> want = EnumSet.noneOf(UffdFeature.class);
        for (UffdFeature f : List.of(UffdFeature.THREAD_ID, UffdFeature.MISSING_SHMEM, UffdFeature.MISSING_HUGETLBFS))
            if (hostFeatures.contains(f)) want.add(f);
        u.api(want);
        for (BlockState s : states) {
            Set<UffdIoctl> ioctls = u.register(s.block.hostAddress(), s.block.usedLength(), EnumSet.of(RegisterMode.MISSING));
            registered = true;
            boolean huge = s.block.backing() == RamBlock.Backing.HUGETLB;
            if (!ioctls.contains(UffdIoctl.COPY) || !ioctls.contains(UffdIoctl.WAKE) || (!huge && !ioctls.contains(UffdIoctl.ZEROPAGE)))
                throw new PostcopyException("block " + s.block.idstr() + " cannot be placed atomically: ioctls " + ioctls);
        }
    }

    @Override
    public void loadPrecopyPages(RamBlock block, long offset, long src, long length) {
        loadPrecopy(block, offset, src, length, false);
    }

    @Override
    public void loadPrecopyZero(RamBlock block, long offset, long length) {
        loadPrecopy(block, offset, 0, length, true);
    }

    /**
     * Precopy may send a page several times (every pass re-sends the pages dirtied since). Block pages not yet
     * present are placed by the backend (UFFDIO_COPY / ZEROPAGE, or gathered into a huge page); pages already
     * present are overwritten in place, where UFFDIO_COPY would only say EEXIST.
     */
    private void loadPrecopy(RamBlock block, long offset, long src, long length, boolean zero) {
        expect("precopy load", IncomingState.ADVISE, IncomingState.DISCARD);
        BlockState s = stateOf(block);
        checkRange(zero ? "precopy zero page" : "precopy page", s, offset, length, TARGET_PAGE);
        long end = offset + length;
        // one hold for the whole range: pages already present are written here, not by the backend
        PlacementBackend b = enterPlacement(s, "precopy load");
        try {
            while (offset < end) {
                long page = offset >>> s.pageShift;
                boolean present = s.received.get(page);
                // the run of target pages up to the end of the range or the first block page in the other state
                long runEnd = Math.min(end, (page + 1) << s.pageShift);
                while (runEnd < end && s.received.get(runEnd >>> s.pageShift) == present)
                    runEnd = Math.min(end, runEnd + s.pageSize);
                long len = runEnd - offset;
                if (present) {
                    long addr = block.hostAddress() + offset;
                    if (!zero) NativeMemory.copy(src, addr, len);
                    else if (!NativeMemory.isZero(addr, len)) NativeMemory.fill(addr, len, (byte) 0);
                } else if (zero) {
                    b.placeZero(s, offset, len);
                } else {
                    b.place(s, offset, src, len);
                }
                if (!zero) src += len;
                offset = runEnd;
            }
        } finally {
            s.releaseBackend();
        }
    }

    // ---- DISCARD ----

    @Override
    public synchronized void prepareDiscard() {
        expect("prepare discard", IncomingState.ADVISE);
        for (BlockState s : states) service.hugePages().disableTransparentHugePages(s.block.hostAddress(), s.block.maxLength());
        thpDisabled = true;
        enter(IncomingState.DISCARD);
    }

    @Override
    public void discard(String idstr, long offset, long length) {
        discard(idstr, new long[] {offset}, new long[] {length}, 1);
    }

    @Override
    public void discard(String idstr, long[] offsets, long[] lengths, int n) {
        if (n < 0 || n > offsets.length || n > lengths.length)
            throw new PostcopyException("discard of " + n + " ranges of block " + idstr + " with arrays of " + offsets.length);
        if (state == IncomingState.ADVISE) prepareDiscard();
        expect("discard", IncomingState.DISCARD);
        BlockState s = stateOf(idstr);
        long bytes = 0;
        for (int i = 0; i < n; i++) {
            checkRange("discard", s, offsets[i], lengths[i], s.pageSize);
            bytes += lengths[i];
        }
        PlacementBackend b = enterPlacement(s, "discard");
        try {
            if (n == 1) b.discard(s, offsets[0], lengths[0]);
            else b.discard(s, offsets, lengths, n);
        } finally {
            s.releaseBackend();
        }
        for (int i = 0; i < n; i++) s.received.clearRange(offsets[i] >>> s.pageShift, (offsets[i] + lengths[i]) >>> s.pageShift);
        discards += n;
        discardedBytes += bytes;
    }

    // ---- LISTENING ----

    @Override
    public synchronized void listen() {
        expect("listen", IncomingState.ADVISE, IncomingState.DISCARD);
        try {
            Throwable f = failure.get();
            if (f != null || faultThread == null || !faultThread.isAlive())
                throw new PostcopyException("migration " + id + ": the fault thread is not running" + (f != null ? ": " + f : ""));
            listening = true;
            balloon = service.balloon().inhibit();
            enter(IncomingState.LISTENING);
        } catch (RuntimeException e) {
            teardownUffd();
            throw e;
        }
    }

    /** Starts the fault thread on the registered userfaultfd and waits until it polls. */
    private void startFaultThread() {
        quit = EventFd.create(true);
        CountDownLatch running = new CountDownLatch(1);
        faultThread = new Thread(() -> faultLoop(running), "postcopy-fault-" + id);
        faultThread.setDaemon(true);
        faultThread.start();
        try {
            if (!running.await(10, TimeUnit.SECONDS)) throw new PostcopyException("fault thread did not start");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PostcopyException("interrupted while starting the fault thread");
        }
    }

    @Override
    public synchronized void run() {
        expect("run", IncomingState.LISTENING);
        enter(IncomingState.RUNNING);
    }

    // ---- the fault thread: the seed's postcopy_ram_fault_thread ----

    private static volatile boolean priorityRefused;

    /** The fault thread turns faults into requests: it should not wait for a CPU behind the guest or the stream. */
    private io.postcopy.uffd.UrgentThread urgent(int nice, int fifo) {
        io.postcopy.uffd.UrgentThread t = io.postcopy.uffd.UrgentThread.enter(fifo, nice);
        if (t.refused() && !priorityRefused) {
            priorityRefused = true;
            LOG.warn("migration {}: the fault thread keeps the default priority: {}", id, t.scheduling());
        }
        return t;
    }

    private void faultLoop(CountDownLatch running) {
        Userfaultfd u = uffd;
        BlockState last = null;
        try (io.postcopy.uffd.UffdMessages msgs = new io.postcopy.uffd.UffdMessages(service.faultBatch());
             io.postcopy.uffd.Poller poller = new io.postcopy.uffd.Poller(u.fd(), quit.fd())) {
            boolean tids = u.enabled(UffdFeature.THREAD_ID);
            io.postcopy.uffd.UrgentThread urgent = urgent(service.faultThreadNice(), service.faultThreadFifoPriority());
            running.countDown();
            for (;;) {
                if (poller.poll(-1) == 0) continue;
                if (poller.readable(1) || poller.failed(1)) return;           // quit
                if (poller.failed(0)) throw new PostcopyException("userfaultfd poll error, revents=" + poller.revents(0));
                int n = msgs.read(u);
                for (int i = 0; i < n; i++) {
                    if (msgs.event(i) != io.postcopy.uffd.UffdMessages.EVENT_PAGEFAULT)
                        throw new PostcopyException("unexpected userfaultfd event "
                                + io.postcopy.uffd.UffdMessages.eventName(msgs.event(i)));
                    last = fault(msgs.faultAddress(i), tids ? msgs.faultThreadId(i) : 0, last);
                }
                urgent.charge();
            }
        } catch (Throwable t) {
            fail(t);
        } finally {
            running.countDown();
        }
    }

    /** One fault: map to (block, page), de-duplicate, request. Returns the block of the last request. */
    private BlockState fault(long addr, int tid, BlockState lastRequested) throws java.io.IOException {
        long now = System.nanoTime();
        faults++;
        RamBlock rb = service.registry().blockOf(addr);
        BlockState s = null;
        if (rb != null) for (BlockState c : states) if (c.block == rb) s = c;
        if (s == null) throw new PostcopyException(String.format("fault at 0x%x outside every RAM block of migration %s", addr, id));
        long offset = (addr - rb.hostAddress()) & ~(s.pageSize - 1);
        long page = offset >>> s.pageShift;
        s.faults++;
        if (offset >= rb.usedLength()) throw new PostcopyException(String.format(
                "fault at 0x%x beyond the used length %d of block %s", addr, rb.usedLength(), rb.idstr()));
        // Record the waiter before publishing the request bit; placement sets received before looking for
        // requested bits. Whichever side comes second sees the other, so no wait is left unaccounted.
        synchronized (waiters) {
            if (s.received.get(page)) {
                dedupReceived++;
                return lastRequested;
            }
            waiters.add(tid, s.index, page, now);
        }
        if (s.requested.testAndSet(page)) {
            dedupRequested++;
            return lastRequested;
        }
        if (s.received.get(page)) {
            // placed between our check and the request bit: the placement may have missed our waiter
            waiters.release(s.index, page, page + 1, System.nanoTime());
            dedupReceived++;
            return lastRequested;
        }
        requester.requestPage(s == lastRequested ? null : rb.idstr(), offset, s.pageSize);
        requests++;
        s.requests++;
        return s;
    }

    void fail(Throwable t) {
        if (failure.compareAndSet(null, t)) {
            LOG.error("migration {}: postcopy failed: {}", id, t.toString());
            try {
                requester.failed(t);
            } catch (RuntimeException e) {
                LOG.warn("migration {}: failure callback threw", id, e);
            }
        }
    }

    // ---- placement: the seed's postcopy_place_page / _zero ----

    @Override
    public long placePages(RamBlock block, long offset, long src, long length) {
        return place(block, offset, src, length, false);
    }

    @Override
    public long placeZeroPages(RamBlock block, long offset, long length) {
        return place(block, offset, 0, length, true);
    }

    private long place(RamBlock block, long offset, long src, long length, boolean zero) {
        IncomingState st = state;
        if (st != IncomingState.LISTENING && st != IncomingState.RUNNING)
            throw new PostcopyException("migration " + id + ": placing pages is not allowed in state " + st);
        BlockState s = stateOf(block);
        checkRange(zero ? "zero page" : "page", s, offset, length, TARGET_PAGE);
        PlacementBackend b = enterPlacement(s, "placement");
        long n;
        try {
            n = zero ? b.placeZero(s, offset, length) : b.place(s, offset, src, length);
        } finally {
            s.releaseBackend();
        }
        bytesPlaced.add(n);
        (zero ? zeroPagesPlaced : pagesPlaced).add(n >>> s.pageShift);
        return n;
    }

    // ---- postcopy recovery ----

    @Override
    public java.nio.ByteBuffer receivedBitmap(String idstr) {
        BlockState s = stateOf(idstr);
        return s.received.toTargetPageWords((int) (s.pageSize / TARGET_PAGE));
    }

    @Override
    public int resendRequests() throws java.io.IOException {
        int n = 0;
        for (BlockState s : states) {
            boolean named = false;
            for (long p = s.requested.nextSetBit(0); p >= 0; p = p + 1 < s.requested.size() ? s.requested.nextSetBit(p + 1) : -1) {
                if (s.received.get(p)) continue;
                requester.requestPage(named ? null : s.block.idstr(), p << s.pageShift, s.pageSize);
                named = true;
                n++;
            }
        }
        return n;
    }

    @Override
    public void dropPartialPages() {
        for (BlockState s : states) s.setTmp(-1, 0);
    }

    // ---- progress and the end ----

    @Override
    public boolean complete() {
        for (BlockState s : states) if (s.received.cardinality() != s.received.size()) return false;
        return true;
    }

    @Override
    public MissingPages missing() {
        List<MissingPages.Range> ranges = new ArrayList<>();
        long total = 0;
        for (BlockState s : states) {
            long n = s.received.size();
            for (long p = s.received.nextClearBit(0); p >= 0 && p < n; ) {
                long end = s.received.nextSetBit(p);
                if (end < 0) end = n;
                ranges.add(new MissingPages.Range(s.block.idstr(), p << s.pageShift, (end - p) << s.pageShift));
                total += (end - p) << s.pageShift;
                p = end >= n ? -1 : s.received.nextClearBit(end);
            }
        }
        return new MissingPages(List.copyOf(ranges), total);
    }

    @Override
    public FaultStatistics statistics() {
        List<BlockStatistics> bs = new ArrayList<>();
        for (BlockState s : states)
            bs.add(new BlockStatistics(s.block.idstr(), s.received.size(), s.received.cardinality(), s.faults, s.requests,
                    waiters.summary(s.index)));
        return new FaultStatistics(faults, requests, dedupReceived, dedupRequested, pagesPlaced.sum(), zeroPagesPlaced.sum(),
                bytesPlaced.sum(), raced.sum(), discards, discardedBytes, waiters.summary(-1), waiters.blocktimeMicros(),
                waiters.blocktimeMicrosByThread(), List.copyOf(bs));
    }

    @Override
    public Optional<Throwable> failure() {
        return Optional.ofNullable(failure.get());
    }

    @Override
    public synchronized MissingPages cleanup() {
        if (state == IncomingState.END) return finalMissing;
        boolean wasPostcopy = listening;
        // no placement may be in flight when the descriptor closes (its number could be reused) or the leases go
        closing = true;
        for (BlockState s : states) {
            s.swap.writeLock().lock();
            s.swap.writeLock().unlock();
        }
        teardownUffd();
        if (thpDisabled) {
            for (BlockState s : states) service.hugePages().restore(s.block.hostAddress(), s.block.maxLength());
            thpDisabled = false;
        }
        if (balloon != null) {
            balloon.close();
            balloon = null;
        }
        if (mlockDropped) {
            service.memoryLock().afterUserfault();
            mlockDropped = false;
        }
        for (BlockState s : states) {
            s.freeTmp();
            PlacementBackend b = s.backend;
            if (b != null) {
                try {
                    b.cleanup(s);
                } catch (RuntimeException e) {
                    LOG.warn("backend {} failed to clean up block {}", b.name(), s.block.idstr(), e);
                }
            }
        }
        finalMissing = wasPostcopy ? missing() : new MissingPages(List.of(), 0);
        if (finalMissing.totalBytes() > 0)
            LOG.warn("migration {}: ended with {} bytes never received in {} ranges; postcopy cannot roll back",
                    id, finalMissing.totalBytes(), finalMissing.ranges().size());
        enter(IncomingState.END);
        releaseLeases();
        service.ended(this);
        return finalMissing;
    }

    /** Unregisters (waking every blocked thread), stops the fault thread and closes the descriptors. */
    private void teardownUffd() {
        Userfaultfd u = uffd;
        if (u != null && registered) {
            for (BlockState s : states) {
                try {
                    u.unregister(s.block.hostAddress(), s.block.usedLength());
                } catch (UffdException e) {
                    LOG.warn("migration {}: unregister {} failed: {}", id, s.block.idstr(), e.getMessage());
                }
            }
        }
        registered = false;
        listening = false;
        if (quit != null) quit.signal();
        if (faultThread != null) {
            try {
                faultThread.join(TimeUnit.SECONDS.toMillis(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (faultThread.isAlive()) LOG.error("migration {}: fault thread did not stop", id);
            faultThread = null;
        }
        if (u != null) u.close();
        if (quit != null) quit.close();
        uffd = null;
        quit = null;
    }

    @Override
    public String toString() {
        return "IncomingPostcopy[" + id + ", " + state + "]";
    }
}
