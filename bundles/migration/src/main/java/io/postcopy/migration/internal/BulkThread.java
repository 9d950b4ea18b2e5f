package io.postcopy.migration.internal;

import io.postcopy.uffd.NativeMemory;
import java.util.function.LongSupplier;

/**
 * A thread that moves background pages while a guest may wait on them (the destination's stream thread from RUN, the
 * source's sender in postcopy) and the weight it runs at. {@code bulkThreadNice} 0..19 fixes its nice value, set once.
 * -1 (the default) makes it yield to a faulting guest: nice {@code bulkThreadYieldNice} from the first page request it
 * sees, its normal weight again once none came for {@link #QUIET_NANOS}, so that a stream no guest waits on keeps the
 * whole CPU. It yields only while it carries background pages alone (requested pages take a postcopy-preempt channel):
 * a stream that carries them too is on the waiting guest's way. One setpriority per transition; a check between pieces
 * of work is one volatile read (and a clock read when new requests came, or while it yields).
 *
 * <p>Its own thread only: nice is per thread, so {@link #check} must come from the thread that made it.
 */
public final class BulkThread {
    /** No page request for this long: the guest no longer faults, the stream takes its normal weight back. */
    static final long QUIET_NANOS = 50_000_000L;

    private final String what;
    /** The migration's page requests so far (sent on the destination, received on the source). */
    private final LongSupplier requests;
    /** Nice while a guest faults; 0 when the weight is fixed (or yielding would change nothing). */
    private final int yieldNice;
    /** The thread's nice value when it began moving background pages: its normal weight. */
    private final int normalNice;
    private long seenRequests, lastRequestNanos;
    private boolean yielding;
    /** A transition was refused (returning needs CAP_SYS_NICE): the thread stays where it is. */
    private boolean stuck;

    private BulkThread(String what, LongSupplier requests, int yieldNice, int normalNice) {
        this.what = what;
        this.requests = requests;
        this.yieldNice = yieldNice;
        this.normalNice = normalNice;
        this.seenRequests = requests.getAsLong();
    }

    /**
     * The calling thread moves background pages from now on: at nice {@code bulkThreadNice} if that is above 0, else,
     * with -1, yielding to a guest whose page requests {@code requests} counts.
     */
    static BulkThread enter(Settings s, String what, LongSupplier requests) {
        int fixed = s.bulkThreadNice();
        if (fixed > 0 && !NativeMemory.setThreadFair(fixed)) {
            AbstractMigration.LOG.warn("{} keeps its priority: nice {} refused", what, fixed);
        }
        int normal = fixed == Settings.BULK_ADAPTIVE ? NativeMemory.threadNice() : 0;
        int yieldNice = fixed == Settings.BULK_ADAPTIVE && s.bulkThreadYieldNice() > normal ? s.bulkThreadYieldNice() : 0;
        return new BulkThread(what, requests, yieldNice, normal);
    }

    /**
     * Between pieces of work: yields while page requests come, returns to the normal weight once they stopped.
     *
     * @param backgroundOnly whether requested pages take another way than this thread's (a postcopy-preempt channel)
     */
    public void check(boolean backgroundOnly) {
        if (yieldNice == 0 || stuck) return;
        long r = requests.getAsLong();
        if (!backgroundOnly) {
            if (yielding) set(false);
            seenRequests = r;
            return;
        }
        if (r != seenRequests) {
            seenRequests = r;
            lastRequestNanos = System.nanoTime();
            if (!yielding) set(true);
        } else if (yielding && System.nanoTime() - lastRequestNanos > QUIET_NANOS) {
            set(false);
        }
    }

    private void set(boolean yield) {
        int nice = yield ? yieldNice : normalNice;
        if (NativeMemory.setThreadFair(nice)) {
            yielding = yield;
        } else {
            // raising nice needs no privilege, lowering it back does: from now on the thread keeps its weight
            stuck = true;
            AbstractMigration.LOG.info("{} stays at nice {}: nice {} refused (needs CAP_SYS_NICE)", what,
                    NativeMemory.threadNice(), nice);
        }
    }
}
