package io.postcopy.migration.internal.source;

import static io.postcopy.migration.internal.AbstractMigration.LOG;

import io.postcopy.codec.Command;
import io.postcopy.codec.DiscardBatcher;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.codec.Wire;
import io.postcopy.migration.MigrationMode;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.DeviceStates;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.nio.channels.ByteChannel;
import java.security.SecureRandom;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The sender, thread {@code postcopy-out-ID} (the seed's {@code migration_thread}): the migration's phases in order.
 * Setup (the connections, the header and block list, PING 1's answer), precopy ({@link Precopy}), the switch (the
 * seed's {@code postcopy_start}: discards, the device-state package), postcopy ({@link PostcopyPass}; a lost
 * connection pauses it until a resume, {@link Recovery}), and the end (RAM END, EOF, the destination's SHUT). It also
 * starts and joins each connection's {@link ReturnPathReader}, and alone enters a final state, once the reader has
 * ended and the blocks are let go.
 */
final class SourceRun {
    private static final SecureRandom RANDOM = new SecureRandom();
    /** The setup's PING: its PONG means the destination has read the header and answers on the return path. */
    static final int FIRST_PING = 1;
    /** QEMU's PING after the package: its PONG means the destination has read RUN. */
    static final int POST_PACKAGE_PING = 4;
    /** Our PING after the block list in pure postcopy (QEMU uses 1..4 around the switch; any value is valid). */
    static final int READY_PING = 5;
    /** Our PING after the discards sent before a hybrid switch's pause: its PONG means the destination dropped them. */
    static final int PRE_DISCARD_PING = 6;
    private static final long READY_WAIT_NANOS = 2_000_000_000L;
    private static final int PONG = 0, ENDED = 1, TIMEOUT = 2;

    private final Outgoing o;
    private final Precopy precopy;
    private final PostcopyPass postcopy;
    /** The current connection's return-path reader; null before the first. */
    private ReturnPathReader reader;

    SourceRun(Outgoing o) {
        this.o = o;
        this.precopy = new Precopy(o);
        this.postcopy = new PostcopyPass(o);
    }

    void run() {
        boolean completed = false;
        String failure = null;
        Error fatal = null;
        try {
            MigrationMode mode = o.options.mode();
            setup(mode);
            if (mode != MigrationMode.POSTCOPY) {
                precopy.startTracking();
                o.enter(MigrationState.PRECOPY, null);
                precopy.run(mode);
                if (mode == MigrationMode.HYBRID) discardBeforePause();
            }
            if (mode == MigrationMode.POSTCOPY) awaitDestinationReady();
            if (mode != MigrationMode.PRECOPY_ONLY) {
                switchToPostcopy();
                for (;;) {
                    try {
                        postcopy.run();
                        break;
                    } catch (IOException e) {
                        if (!pausable()) throw e;
                        o.recovery.pauseUntilResumed(e);
                    }
                }
            } else {
                precopy.complete();
            }
            failure = end();
            completed = failure == null;
        } catch (Throwable t) {
            failure = o.describeSource(t);
            if (t instanceof Error && !(t instanceof AssertionError)) fatal = (Error) t;
        } finally {
            // the reader may write requested pages from the blocks: it must end before they are let go. A failure it
            // reports from now on is only the closing
            String rf = o.readerFailure;
            stopReader();
            o.recovery.clear();
            precopy.closeTrackers();
            if (o.downtime.guestPaused() && !o.downtime.isPackageSent() && !completed) {
                // the destination never got the guest: it goes on here
                try {
                    o.options.guest().resume();
                } catch (RuntimeException e) {
                    LOG.warn("migration {}: resuming the guest failed", o.id(), e);
                }
            }
            o.releaseLeases();
            // last: whoever sees the final state may remove the blocks
            if (completed) {
                o.enter(MigrationState.COMPLETED, null);
            } else if (o.cancelled) {
                o.enter(MigrationState.CANCELLED, "cancelled on the source");
            } else {
                o.fail(rf != null ? rf : failure);
            }
            if (o.state() == MigrationState.COMPLETED) {
                RamWriter w = o.writer;
                PreemptSender p = o.preempt;
                LOG.info("migration {}: {} pages + {} zero pages, {} discard ranges, {} requests ({} served out of order, "
                                + "{} of them sent again because they were still in flight), postcopy {} ms at {} GB/s", o.id(),
                        w.pages + p.pages, w.zeroPages + p.zeroPages, o.discardRanges, o.requests,
                        o.requestedPages + p.requestedPages, p.resent, o.postcopyNanos() / 1_000_000,
                        String.format("%.2f", o.progress().throughputGBps()));
            }
        }
        if (fatal != null) throw fatal;
    }

    /** The connections, the reader, and QEMU's order: OPEN_RETURN_PATH, PING 1, POSTCOPY_ADVISE, RAM START (MEM_SIZE). */
    private void setup(MigrationMode mode) throws IOException {
        Connections.Main main = o.connections.openMain(o.target, 0);
        o.writer.attach(main.enc());
        RANDOM.nextBytes(o.connections.token);
        // right after the main connection, silent until the first requested page, as QEMU 7.2 does
        if (o.options.postcopyPreempt() && mode != MigrationMode.PRECOPY_ONLY) o.preempt.attach(o.connections.openPreempt(o.target));
        startReader(main.io());

        boolean postcopy = mode != MigrationMode.PRECOPY_ONLY;
        StreamEncoder enc = main.enc();
        enc.writeHeader().writeConfiguration(o.options.machineName());
        enc.writeCommand(new Command.OpenReturnPath());
        // the token proves our extra channel and, after a lost connection, the resumed one (QEMU never gets it)
        if (postcopy) enc.writeCommand(new Command.ChannelToken(o.connections.token));
        enc.writeCommand(new Command.PeerId(o.id()));   // our destination answers with its id (QEMU never gets this)
        enc.writeCommand(new Command.Ping(FIRST_PING));
        List<RamBlockInfo> infos = List.of(o.book.infos);
        if (postcopy) {
            long summary = 0;
            for (RamBlockInfo i : infos) summary |= i.pageSize();
            enc.writeCommand(Command.PostcopyAdvise.of(summary, Wire.DEFAULT_TARGET_PAGE_SIZE));
        }
        enc.writeSectionStart(SectionType.START, DeviceStates.RAM_SECTION_ID, "ram", 0, 4);
        enc.writeMemSize(infos, postcopy, NativeMemory.pageSize());
        enc.writeEos();
        enc.writeFooter(DeviceStates.RAM_SECTION_ID);
        enc.flush();
        awaitFirstPong();
    }

    /**
     * SETUP ends when the destination has answered PING 1 (it read the header and the block list, and its return
     * path works): a refusal (TLS, limits, a wrong peer) fails the migration in SETUP, not a moment after it has
     * seemed to start. A peer that does not answer within {@link #READY_WAIT_NANOS} is given the benefit of the doubt
     * (the stream goes on; its own failure will tell).
     */
    private void awaitFirstPong() throws IOException {
        if (awaitPong(reader.firstPong, FIRST_PING, 5) == ENDED) {
            String why = o.readerFailure;
            throw new IOException(why != null ? why : "the destination closed the return path before answering PING 1");
        }
    }

    /**
     * Pure postcopy pauses the guest at once, so whatever the destination does to set up (create the blocks,
     * register them with userfaultfd, discard them) would be downtime. A PING after the block list, answered
     * once the destination has read it, lets the guest run on meanwhile: nothing has been sent that it could
     * make stale. A destination that does not answer within {@link #READY_WAIT_NANOS} is not waited for longer
     * (PONGs are not required by the protocol); if the return path ended, the next write tells why.
     */
    private void awaitDestinationReady() throws IOException {
        o.writer.enc().writeCommand(new Command.Ping(READY_PING));
        o.writer.enc().flush();
        if (awaitPong(reader.readyPong, READY_PING, 10) == TIMEOUT) {
            LOG.info("migration {}: no PONG {} from the destination within {} ms; pausing the guest anyway",
                    o.id(), READY_PING, READY_WAIT_NANOS / 1_000_000);
        }
    }

    /** Waits for {@code pong} up to {@link #READY_WAIT_NANOS}: PONG, ENDED (the return path ended first) or TIMEOUT. */
    private int awaitPong(CountDownLatch pong, int ping, long pollMillis) throws IOException {
        long until = System.nanoTime() + READY_WAIT_NANOS;
        try {
            while (!pong.await(pollMillis, TimeUnit.MILLISECONDS)) {
                if (o.cancelled) throw new IOException("cancelled");
                if (reader.end.getCount() == 0) return ENDED;
                if (System.nanoTime() - until > 0) return TIMEOUT;
            }
            return PONG;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the destination's PONG " + ping);
        }
    }

    /**
     * Hybrid, before the pause: the pages the last precopy scan found re-dirtied are discarded while the guest still
     * runs, and the destination's PONG says it has dropped them. The downtime then carries only the discards of pages
     * written since that scan: dropping tens of thousands of ranges costs the destination's kernel ~100 ms here
     * (docs/performance.md, "Batched discards"). Our destination takes discards at any time before LISTEN; QEMU's
     * source never does this (we never migrate to QEMU). A destination that does not answer within
     * {@link #READY_WAIT_NANOS} is not waited for longer.
     */
    private void discardBeforePause() throws IOException {
        o.writer.endPart();
        StreamEncoder enc = o.writer.enc();
        DiscardBatcher batcher = new DiscardBatcher(enc::writeCommand, Wire.DEFAULT_TARGET_PAGE_SIZE);
        o.book.discardStale(batcher);
        o.discardRanges += batcher.rangeCount();
        if (batcher.rangeCount() == 0) return;
        enc.writeCommand(new Command.Ping(PRE_DISCARD_PING));
        enc.flush();
        if (awaitPong(reader.discardedPong, PRE_DISCARD_PING, 5) == TIMEOUT) {
            LOG.info("migration {}: no PONG {} from the destination within {} ms; pausing the guest anyway",
                    o.id(), PRE_DISCARD_PING, READY_WAIT_NANOS / 1_000_000);
        }
        LOG.debug("migration {}: {} discard ranges before the pause", o.id(), batcher.rangeCount());
    }

    /** The seed's {@code postcopy_start}: the guest paused, stale pages discarded, the package with RUN. */
    private void switchToPostcopy() throws IOException {
        o.downtime.pauseGuest(o.options.guest());
        precopy.lastScan();
        o.writer.endPart();
        o.enter(MigrationState.POSTCOPY, null);
        // stale pages become discards (postcopy_each_ram_send_discard), QEMU's PING 2 / package / PING 4 around
        StreamEncoder enc = o.writer.enc();
        DiscardBatcher batcher = new DiscardBatcher(enc::writeCommand, Wire.DEFAULT_TARGET_PAGE_SIZE);
        o.book.discardStale(batcher);
        o.discardRanges += batcher.rangeCount();
        enc.writeCommand(new Command.Ping(2));
        enc.writePackaged(o.packager.build(o.handlers, true));
        o.deviceSections = o.handlers.size();
        o.downtime.packageSent();
        enc.writeCommand(new Command.Ping(POST_PACKAGE_PING));
        enc.flush();
        o.downtime.packageFlushed();
        // after the package, not before: scheduling the watch cost 0.1-0.4 ms of downtime
        o.silence.restart();
        o.silence.watch();
        LOG.debug("migration {}: switched: {} discard ranges in {} commands, {} device sections", o.id(),
                batcher.rangeCount(), batcher.commandCount(), o.handlers.size());
    }

    /** A lost connection in postcopy pauses: the destination runs the guest, and only we hold its missing pages. */
    private boolean pausable() {
        return !o.cancelled && o.downtime.isPackageSent() && !reader.malformed
                && (o.state() == MigrationState.POSTCOPY || o.state() == MigrationState.POSTCOPY_RECOVER);
    }

    /** RAM END, EOF, the preempt channel's EOS, and the destination's SHUT. Returns why that failed, or null. */
    private String end() throws IOException, InterruptedException {
        o.writer.endPart();
        StreamEncoder enc = o.writer.enc();
        enc.writeSectionPart(SectionType.END, DeviceStates.RAM_SECTION_ID);
        enc.writeEos();
        enc.writeFooter(DeviceStates.RAM_SECTION_ID);
        enc.writeEof();
        enc.flush();
        o.preempt.end();
        LOG.debug("migration {}: EOF sent after {} bytes, waiting for SHUT", o.id(), enc.position());
        if (!reader.end.await(o.options.shutTimeout().toNanos(), TimeUnit.NANOSECONDS)) {
            return "no SHUT from the destination within " + o.options.shutTimeout();
        }
        Integer shut = reader.shutStatus;
        if (shut == null) return "return path closed before SHUT";
        if (shut != 0) return "destination reported failure: SHUT status " + shut;
        return null;
    }

    // ---- the return-path reader of the current connection ----

    /** A reader for a new main connection; the previous one has ended. */
    ReturnPathReader startReader(ByteChannel io) {
        reader = ReturnPathReader.start(o, io);
        return reader;
    }

    /** Closes the connections and joins the reader, however long it takes: it ends once its socket is closed. */
    void stopReader() {
        o.connections.close();
        Thread t = reader == null ? null : reader.thread();
        if (t == null) return;
        boolean interrupted = false;
        while (t.isAlive()) {
            try {
                t.join(5000);
                if (t.isAlive()) LOG.warn("migration {}: still waiting for {} to end", o.id(), t.getName());
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }
}
