package io.postcopy.workload.internal;

import io.postcopy.ramblock.PageBitmap;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.workload.LatencySummary;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.SingleWriterRecorder;

/**
 * The vCPU threads of one workload. Invariants: block memory is touched only by {@code memcpy} (native) between
 * the block and a thread's private buffer; a page is written only under its stripe's monitor, so no page is
 * ever seen half-written by a locked reader, and none is left half-written by pause or stop, which act only
 * between accesses. A read that returns after a pause or stop was requested is abandoned (not counted, not
 * checked): it may have been woken into a page that never arrived ({@link #requestPause}).
 *
 * <p>The block is leased from start until the last thread has exited; a forced removal asks the threads to stop.
 */
public final class RunningWorkload implements Workload {
    private static final int STRIPES = 1024; // a power of two

    private final RamBlock block;
    private final WorkloadOptions options;
    private final long host;
    private final long pages;
    private final PageBitmap touched;
    private final Object[] stripes = new Object[STRIPES];
    private final Vcpu[] vcpus;
    /** Write generations: unique per write, so any two images of a page differ. */
    private final AtomicLong generation = new AtomicLong();
    private final long deadline;
    private final long stallNanos;
    private final boolean lockReads;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private volatile boolean pauseRequested;
    private volatile boolean stopRequested;
    private int parked; // guarded by lock: threads waiting in parkWhilePaused
    private int exited; // guarded by lock
    private final CountDownLatch ended;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final AtomicLong firstReadMismatch = new AtomicLong(-1);
    private final Object latencyLock = new Object();
    private final java.time.Instant startedAt = java.time.Instant.now();

    private RunningWorkload(RamBlock block, WorkloadOptions options) {
        this.block = block;
        this.options = options;
        this.host = block.hostAddress();
        this.pages = block.usedLength() / PAGE_SIZE;
        if (pages < 1) throw new IllegalArgumentException("block " + block.idstr() + " has no whole 4 KiB page");
        this.touched = new PageBitmap(pages);
        for (int i = 0; i < STRIPES; i++) stripes[i] = new Object();
        long d = options.duration().toNanos();
        this.deadline = d == 0 ? 0 : System.nanoTime() + d;
        this.stallNanos = options.stallThreshold().toNanos();
        this.lockReads = options.checkReads() && options.writeFraction() > 0;
        int n = options.threads();
        this.ended = new CountDownLatch(n);
        this.vcpus = new Vcpu[n];
        for (int t = 0; t < n; t++) vcpus[t] = new Vcpu(t);
    }

    public static RunningWorkload start(RamBlock block, WorkloadOptions options) {
        RunningWorkload w = new RunningWorkload(block, options);
        w.lease = block.lease("workload on " + block.idstr(), w::requestStop);
        for (Vcpu v : w.vcpus) v.start();
        return w;
    }

    private volatile io.postcopy.ramblock.RamBlockLease lease;

    @Override
    public void requestPause() {
        pauseRequested = true;
        for (Vcpu v : vcpus) LockSupport.unpark(v); // cut a rate-limit sleep short
    }

    /** Asks the threads to exit and returns at once (a forced removal of the block). */
    private void requestStop() {
        stopRequested = true;
        lock.lock();
        try {
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        for (Vcpu v : vcpus) LockSupport.unpark(v);
    }

    @Override public RamBlock block() { return block; }
    @Override public java.time.Instant startedAt() { return startedAt; }

    @Override public WorkloadOptions options() { return options; }

    @Override
    public void pause() {
        lock.lock();
        try {
            pauseRequested = true;
            for (Vcpu v : vcpus) LockSupport.unpark(v); // cut a rate-limit sleep short
            while (parked + exited < vcpus.length) changed.awaitUninterruptibly();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void resume() {
        lock.lock();
        try {
            pauseRequested = false;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    @Override public boolean isPaused() { return pauseRequested; }

    @Override
    public void stop() {
        requestStop();
        boolean interrupted = false;
        for (Vcpu v : vcpus) {
            while (v.isAlive()) {
                try {
                    v.join();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    @Override public boolean isRunning() { return ended.getCount() > 0; }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
        return ended.await(timeout, unit);
    }

    @Override public Throwable failure() { return failure.get(); }

    @Override public long reads() { return sum(v -> v.reads); }

    @Override public long writes() { return sum(v -> v.writes); }

    /** A counter summed over the vCPU threads (each thread writes only its own). */
    private long sum(java.util.function.ToLongFunction<Vcpu> counter) {
        long s = 0;
        for (Vcpu v : vcpus) s += counter.applyAsLong(v);
        return s;
    }

    @Override public long pagesTouched() { return touched.cardinality(); }

    @Override public long stalls() { return sum(v -> v.stalls); }

    @Override public long readMismatches() { return sum(v -> v.readMismatches); }

    @Override public long firstReadMismatch() { return firstReadMismatch.get(); }

    @Override
    public LatencySummary latency() {
        Histogram merged = new Histogram(3);
        synchronized (latencyLock) {
            for (Vcpu v : vcpus) {
                v.interval = v.recorder.getIntervalHistogram(v.interval);
                v.total.add(v.interval);
                merged.add(v.total);
            }
        }
        long count = merged.getTotalCount();
        double thresholdUs = stallNanos / 1000.0;
        if (count == 0) return new LatencySummary(0, 0, 0, 0, 0, 0, stalls(), thresholdUs);
        return new LatencySummary(count, merged.getValueAtPercentile(50) / 1000.0,
                merged.getValueAtPercentile(99) / 1000.0, merged.getValueAtPercentile(99.9) / 1000.0,
                merged.getMaxValue() / 1000.0, merged.getMean() / 1000.0, stalls(), thresholdUs);
    }

    @Override
    public String toString() {
        return "Workload[" + block.idstr() + ", " + options.pattern() + ", threads=" + vcpus.length + ", reads="
                + reads() + ", writes=" + writes() + (isRunning() ? isPaused() ? ", paused" : ", running" : ", ended")
                + "]";
    }

    /** Called by a vCPU between accesses when a pause is requested: parks until resumed or stopped. */
    private void parkWhilePaused() {
        lock.lock();
        try {
            parked++;
            changed.signalAll();
            while (pauseRequested && !stopRequested) changed.awaitUninterruptibly();
            parked--;
        } finally {
            lock.unlock();
        }
    }

    private void exit() {
        boolean last;
        lock.lock();
        try {
            last = ++exited == vcpus.length;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        ended.countDown();
        if (last) lease.close();     // no thread of ours touches the block any more (and isRunning says so)
    }

    private final class Vcpu extends Thread {
        final PageChooser chooser;
        final SingleWriterRecorder recorder = new SingleWriterRecorder(3);
        Histogram interval; // guarded by latencyLock
        final Histogram total = new Histogram(3); // guarded by latencyLock
        // Single writer (this thread); summed by readers.
        volatile long reads, writes, stalls, readMismatches;

        Vcpu(int index) {
            super("workload-" + block.idstr() + "-" + index);
            setDaemon(true);
            chooser = new PageChooser(options.pattern(), pages, index, options.threads(), options.writeFraction(),
                    options.hotPageFraction(), options.hotAccessFraction(), options.randomSeed());
        }

        @Override
        public void run() {
            long buf = 0;
            try {
                buf = NativeMemory.allocate(PAGE_SIZE);
                long limit = options.accessesPerThread();
                long rate = options.ratePerThread();
                long gap = rate == 0 ? 0 : Math.max(1, 1_000_000_000L / rate);
                long due = System.nanoTime();
                long done = 0;
                while (!stopRequested) {
                    if (pauseRequested) {
                        parkWhilePaused();
                        due = System.nanoTime();
                        continue;
                    }
                    if (limit > 0 && done >= limit) break;
                    if (deadline != 0 && System.nanoTime() - deadline >= 0) break;
                    if (gap != 0) {
                        long now = System.nanoTime();
                        if (now - due < 0) {
                            LockSupport.parkNanos(due - now);
                            continue; // re-check pause and stop
                        }
                        due = Math.max(due + gap, now - 1_000_000_000L); // catch up at most one second
                    }
                    long page = chooser.next();
                    if (chooser.nextIsWrite()) write(buf, page);
                    else read(buf, page);
                    done++;
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            } finally {
                if (buf != 0) NativeMemory.free(buf);
                exit();
            }
        }

        private void write(long buf, long page) {
            PageImage.build(buf, options.contentSeed(), page, generation.incrementAndGet());
            long t0, t1;
            synchronized (stripes[(int) page & (STRIPES - 1)]) {
                t0 = System.nanoTime();
                NativeMemory.nativeCopy(buf, host + page * PAGE_SIZE, PAGE_SIZE);
                t1 = System.nanoTime();
            }
            record(t1 - t0, page);
            writes++;
        }

        private void read(long buf, long page) {
            long t0, t1;
            if (lockReads) {
                synchronized (stripes[(int) page & (STRIPES - 1)]) {
                    t0 = System.nanoTime();
                    NativeMemory.nativeCopy(host + page * PAGE_SIZE, buf, PAGE_SIZE);
                    t1 = System.nanoTime();
                }
            } else {
                t0 = System.nanoTime();
                NativeMemory.nativeCopy(host + page * PAGE_SIZE, buf, PAGE_SIZE);
                t1 = System.nanoTime();
            }
            if (pauseRequested || stopRequested) return;    // abandoned: it may have woken into a page that never came
            record(t1 - t0, page);
            reads++;
            if (options.checkReads() && !PageImage.consistent(buf, page)) {
                readMismatches++;
                firstReadMismatch.compareAndSet(-1, page);
            }
        }

        private void record(long nanos, long page) {
            recorder.recordValue(Math.max(0, nanos));
            if (nanos > stallNanos) stalls++;
            if (!touched.get(page)) touched.testAndSet(page);
        }
    }
}
