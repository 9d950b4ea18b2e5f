package io.postcopy.migration.internal.destination;

import static io.postcopy.migration.internal.AbstractMigration.LOG;
import static io.postcopy.migration.internal.AbstractMigration.describe;

import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.MissingPages;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.Refused;
import io.postcopy.ramblock.RamBlock;
import java.io.IOException;
import java.net.InetAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;

/**
 * The end of an incoming migration (the seed's {@code postcopy_ram_incoming_cleanup} and the end of
 * {@code qemu_loadvm_state}): at EOF every page must be here, then SHUT 0; on a failure the guest is paused before
 * the blocks can wake it, the fault service cleaned up, the blocks removed, and only then the final state (reported
 * by {@link EndReport}).
 *
 * <p>Threads: the stream thread; a failure also from an API caller's thread when a paused migration (no stream thread)
 * is cancelled.
 */
final class End {
    /**
     * How long the main stream's EOF waits for the postcopy channel to be done: its EOS (QEMU 7.2 sends it right after
     * EOF) or every page received (QEMU 8.0+ sends no EOS).
     */
    private static final long POSTCOPY_CHANNEL_EOS_MILLIS = 30_000;
    /** How long a failed migration waits for the holders of its blocks (the guest) to let go before it keeps them. */
    private static final Duration REMOVE_WAIT = Duration.ofSeconds(10);

    private final Destination main;
    /** The main connection's remote host, kept for after its close. */
    private final InetAddress sourceHost;

    End(Destination main, InetAddress sourceHost) {
        this.main = main;
        this.sourceHost = sourceHost;
    }

    /** EOF (the pages staged before it placed): every page must be present; clean up, answer SHUT 0. */
    void complete() throws IOException {
        IncomingPostcopy p = main.postcopy;
        boolean listening = main.listening;
        PreemptReceiver pc = main.preempt;
        if (pc == null && listening && p != null && !p.complete() && (main.fromOurSource() || main.options.qemuPreempt())) {
            // requested pages may be on the channel the source announced (or QEMU's, accepted after this one),
            // which has not reached us yet
            long deadline = System.nanoTime() + 2_000_000_000L;
            while ((pc = main.preempt) == null && System.nanoTime() < deadline) LockSupport.parkNanos(1_000_000);
        }
        if (pc != null) {
            if (listening) {
                try {
                    String how = pc.awaitEosOrComplete(() -> p != null && p.complete(), POSTCOPY_CHANNEL_EOS_MILLIS);
                    LOG.debug("migration {}: postcopy-preempt channel done: {}", main.id(), how);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while waiting for the postcopy-preempt channel's EOS");
                }
            } else {
                pc.close();   // precopy completed: QEMU closes the unused channel without EOS
            }
        }
        if (p != null) {
            boolean complete = p.complete();
            MissingPages m = p.cleanup();
            if (listening) main.missing = m;
            Optional<Throwable> f = p.failure();
            if (f.isPresent()) throw new IOException("fault thread failed: " + describe(f.get()), f.get());
            if (!complete) {
                main.missing = listening ? m : p.missing();
                throw new IOException("stream ended (EOF) with " + (listening ? m.totalBytes() + " bytes" : "pages")
                        + " never received");
            }
        }
        if (!listening && !main.guestResumed) main.commands.resumeGuest(false);
        main.returnPath.sendShut(0);
        if (main.listener != null) main.listener.ended(main);
        // RUN resumed the guest on a thread of its own; COMPLETED promises it has resumed (DeviceStateAndPrecopyTest
        // once saw COMPLETED before the guest's resume callback had run)
        main.commands.joinResume();
        main.enter(MigrationState.COMPLETED, null);
        main.closeQuietly();
        StreamReader r = main.reader;
        LOG.info("migration {}: received {} pages + {} zero pages{}, {} discard ranges, {} requests, postcopy {} ms at {} GB/s",
                main.id(), r.pages, r.zeroPages, pc == null ? "" : " (and " + pc.pages + " + " + pc.zeroPages
                        + " on the postcopy-preempt channel)", main.commands.discardRanges(), main.returnPath.requests(),
                main.postcopyNanos() / 1_000_000, String.format("%.2f", main.progress().throughputGBps()));
    }

    /**
     * Ends this migration: SHUT 1 if the connection still works, close it, ask the guest to pause (before any of
     * its vCPUs blocked on a missing page can wake), stop the postcopy channel's thread, clean up the fault
     * service (which waits for placements in flight, then unregisters and so wakes those vCPUs), wait for the
     * guest to pause, remove the blocks. Only then the final state: nothing of ours touches the blocks any more.
     */
    void fail(Throwable t, boolean trySend) {
        main.ending = true;
        if (main.asyncFailure == null && main.listener != null && main.state() == MigrationState.SETUP && EndReport.endOfInput(t)) {
            t = multifdRefusal(t);
        }
        Throwable cause = main.asyncFailure != null ? main.asyncFailure : t;
        boolean cancelled = main.cancelled;
        MigrationState in = main.state();
        if (trySend && main.channel.isOpen()) {
            try {
                main.returnPath.sendShut(1);
            } catch (IOException | RuntimeException ignored) {
                // the connection is gone
            }
        }
        main.closeQuietly();
        PreemptReceiver pc = main.preempt;
        if (pc != null) pc.close();
        boolean guestStopped = true;
        boolean guestResumed = main.guestResumed;
        if (guestResumed) {
            main.commands.joinResume();     // a resume still on its way must not come after the pause
            try {
                main.options.guest().requestPause();
            } catch (RuntimeException e) {
                LOG.warn("migration {}: asking the guest to pause failed", main.id(), e);
            }
        } else {
            main.commands.joinResume();     // lets a resume thread waiting for RUN go
        }
        if (pc != null && !pc.awaitEnded(10_000)) LOG.warn("migration {}: the postcopy-preempt channel's thread goes on", main.id());
        IncomingPostcopy p = main.postcopy;
        MissingPages missing = null;
        if (p != null) {
            try {
                missing = p.cleanup();
                if (main.listening) main.missing = missing;
            } catch (RuntimeException e) {
                LOG.warn("migration {}: cleanup failed", main.id(), e);
            }
        }
        if (guestResumed) {
            try {
                main.options.guest().pause();
            } catch (RuntimeException e) {
                guestStopped = false;
                LOG.warn("migration {}: pausing the guest failed; its blocks stay", main.id(), e);
            }
        }
        if (main.options.removeBlocksOnFailure() && guestStopped) {
            for (RamBlock b : main.created) {
                try {
                    // by force: the paused guest (e.g. a workload) holds the block too, and is asked to let go
                    main.service.registry().remove(b.idstr(), REMOVE_WAIT);
                } catch (RuntimeException e) {
                    LOG.warn("migration {}: removing block {} failed: {}", main.id(), b.idstr(), e.getMessage());
                }
            }
            main.created.clear();
        }
        if (main.listener != null) main.listener.ended(main);
        EndReport report = EndReport.failed(cause, cancelled, in, missing);
        // last: whoever waits for the final state finds everything cleaned up. A cancel that came while this one
        // failed ends it as CANCELLED all the same; the reason stays the first cause's
        main.enter(main.cancelled ? MigrationState.CANCELLED : report.state(), report.reason());
    }

    /**
     * QEMU closes its main stream when we refuse one of its other channels (multifd): that refusal, perhaps still on
     * its way from another thread, is the reason; a moment's wait costs a failing migration nothing.
     */
    private Throwable multifdRefusal(Throwable t) {
        long since = main.startNanos - 2_000_000_000L;     // its channels may be refused before its first bytes are read
        long deadline = System.nanoTime() + 500_000_000L;
        while (main.asyncFailure == null && !main.listener.multifdRefusedFrom(sourceHost, since) && System.nanoTime() < deadline) {
            LockSupport.parkNanos(2_000_000);
        }
        if (main.asyncFailure == null && main.listener.multifdRefusedFrom(sourceHost, since)) {
            return new Refused("the source closed its stream in SETUP after its multifd channel was refused: capability"
                    + " multifd is not supported, turn it off on the source");
        }
        return t;
    }
}
