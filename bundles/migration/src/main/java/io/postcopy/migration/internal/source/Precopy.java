package io.postcopy.migration.internal.source;

import static io.postcopy.migration.internal.AbstractMigration.LOG;

import io.postcopy.migration.MigrationMode;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.DirtyTracker;
import java.io.IOException;

/**
 * Precopy while the guest runs (the seed's {@code ram_save_iterate} passes, each followed by
 * {@code migration_bitmap_sync}), and the end of a precopy-only migration with the guest paused
 * ({@code ram_save_complete}). Sender only.
 *
 * <p>The dirty trackers are registered before the first page is read, so that a write during the first pass is seen,
 * and stay until the migration ends ({@link #closeTrackers}, from the sender's last steps): unregistering
 * write-protect tracking walks every page table entry (190 ms for 256 MiB on this PVM guest), which must not happen
 * while the guest is paused.
 */
final class Precopy {
    /** PRECOPY_ONLY stops iterating when no more than this many pages are dirty. */
    private static final long SMALL_DIRTY_SET = 256;

    private final Outgoing o;
    /** One per block; null when precopy did not run. */
    private DirtyTracker[] trackers;

    Precopy(Outgoing o) {
        this.o = o;
    }

    void startTracking() {
        trackers = new DirtyTracker[o.book.blocks.size()];
        for (int i = 0; i < trackers.length; i++) {
            RamBlock b = o.book.blocks.get(i);
            trackers[i] = new DirtyTracker(b.hostAddress(), b.usedLength());
        }
    }

    /** Passes until the dirty set stops shrinking, the iterations run out, or (HYBRID) the switch is due. */
    void run(MigrationMode mode) throws IOException {
        long deadline = o.options.postcopyAfter() == null ? Long.MAX_VALUE : o.startNanos + o.options.postcopyAfter().toNanos();
        long previous = Long.MAX_VALUE;
        for (int iter = 1; ; iter++) {
            o.iterations = iter;
            boolean whole = sendUnsent(mode == MigrationMode.HYBRID ? deadline : Long.MAX_VALUE);
            long dirty = o.book.scanDirty(trackers);
            o.dirtyPages = dirty;
            LOG.debug("migration {}: precopy pass {} {}, {} pages dirty", o.id(), iter, whole ? "done" : "cut short", dirty);
            if (mode == MigrationMode.HYBRID) {
                if (!whole || o.switchRequested || System.nanoTime() >= deadline || dirty >= previous
                        || iter >= o.options.maxIterations()) {
                    return;
                }
            } else if (dirty <= SMALL_DIRTY_SET || dirty >= previous || iter >= o.options.maxIterations()) {
                return;
            }
            previous = dirty;
        }
    }

    /** One pass over the pages not in {@code sent}. False when cut short by a switch request or the deadline. */
    private boolean sendUnsent(long deadline) throws IOException {
        PageBook book = o.book;
        for (int bi = 0; bi < book.blockCount(); bi++) {
            for (long p = book.nextUnsent(bi, 0); p >= 0; p = book.nextUnsent(bi, p + 1)) {
                if (o.cancelled) throw new IOException("cancelled");
                if ((p & 255) == 0 && (o.switchRequested || System.nanoTime() >= deadline)) return false;
                while (o.pacing.holdBack()) {
                    if (o.cancelled) throw new IOException("cancelled");
                    if (o.switchRequested || System.nanoTime() >= deadline) return false;
                }
                o.writer.sendPage(bi, p, false);
            }
        }
        return true;
    }

    /** PRECOPY_ONLY's end: the guest paused, the last dirty pages, the device state. */
    void complete() throws IOException {
        o.downtime.pauseGuest(o.options.guest());
        o.book.scanDirty(trackers);      // the trackers are closed when the migration ends, not in the downtime
        sendUnsent(Long.MAX_VALUE);
        o.writer.endPart();
        if (!o.handlers.isEmpty()) {
            o.writer.enc().writePackaged(o.packager.build(o.handlers, false));
            o.deviceSections = o.handlers.size();
        }
        o.downtime.packageSent();
    }

    /** At the switch, with the guest paused: the pages written since the last pass become stale. */
    void lastScan() {
        if (trackers != null) o.dirtyPages = o.book.scanDirty(trackers);
    }

    void closeTrackers() {
        DirtyTracker[] t = trackers;
        if (t == null) return;
        for (DirtyTracker d : t) if (d != null) d.close();
        trackers = null;
    }
}
