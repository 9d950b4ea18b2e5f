package io.postcopy.migration.internal.destination;

import static io.postcopy.migration.internal.AbstractMigration.LOG;
import static io.postcopy.migration.internal.AbstractMigration.TARGET_PAGE;

import io.postcopy.codec.Command;
import io.postcopy.codec.DeviceSection;
import io.postcopy.codec.DiscardRange;
import io.postcopy.codec.PackageContents;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.migration.DeviceStateHandler;
import io.postcopy.migration.IncomingMigration.OpaqueSection;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.DeviceStates;
import io.postcopy.migration.internal.Refused;
import io.postcopy.migration.internal.Urgent;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.UrgentThread;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * The stream's commands (the seed's {@code loadvm_process_command} and {@code loadvm_postcopy_handle_*}) and the
 * checks that refuse what this destination does not do: ADVISE against our page sizes, the order ADVISE → LISTEN →
 * RUN, where each command may stand (in a package or not), the device-state limit of a package. RUN resumes the guest,
 * on a thread of its own since it may fault on pages this stream places.
 *
 * <p>The stream thread only; the counters are read by API callers, the resume thread by whichever thread ends the
 * migration.
 */
final class Commands {
    private final Destination main;
    private boolean returnPath, advised, running;
    /** QEMU 10.0+'s SWITCHOVER_START seen (at most once, before RUN). */
    private boolean switchoverStarted;
    /** From POSTCOPY_ADVISE (0: none, or the short form); the OR of the block page sizes read ahead (0: unknown). */
    private long advisedSummary, probedSummary;
    private long deviceStateBytes;
    private volatile long discardRanges;
    /** Ranges of the discard commands in a row, dropped together before anything else takes effect. */
    final DiscardBatch discards = new DiscardBatch();
    private volatile int deviceSections;
    /** The thread that resumes the guest at RUN: started at ADVISE, it waits for the gate. */
    private volatile Thread resumeThread;
    private final CountDownLatch resumeGate = new CountDownLatch(1);
    /** Set before the gate opens at RUN; an open gate without it means the migration ended first. */
    private volatile boolean resumeAtRun;
    /**
     * The stream thread's scheduling during the switch, while no guest runs anywhere: from PACKAGED (or QEMU 10's
     * SWITCHOVER_START) until it has answered the PING after RUN, read a page after RUN, or reached the end of a
     * precopy-only stream; null outside it.
     */
    private UrgentThread switchUrgent;
    /** The stream thread's nice value before the switch, to return to. */
    private int switchNice;
    /** The thread that entered the switch: scheduling is per thread, and a resumed run has a thread of its own. */
    private Thread switchThread;
    /** Whether the switch is over (it happens once per stream). */
    private boolean switched;

    Commands(Destination main) {
        this.main = main;
    }

    long discardRanges() {
        return discardRanges;
    }

    int deviceSections() {
        return deviceSections;
    }

    void command(Command c, boolean inPackage) throws IOException {
        // the source's guest is paused: the discards gathered before the package are dropped as part of the switch
        if (c instanceof Command.Packaged && !inPackage) enterSwitch();
        if (!(c instanceof Command.PostcopyRamDiscard)) discards.flush();
        if (c instanceof Command.OpenReturnPath) {
            returnPath = true;
            // QEMU's loadvm_process_command: with switchover-ack, the ACK right away when no device holds it back
            if (main.options.switchoverAck() && !inPackage) main.returnPath.send(new ReturnPathMessage.SwitchoverAck());
        } else if (c instanceof Command.Ping ping) {
            LOG.debug("migration {}: PING {}", main.id(), ping.value());
            if (returnPath) main.returnPath.send(new ReturnPathMessage.Pong(ping.value()));
            if (running) leaveSwitch();     // the PING after RUN: the source's downtime ends with this PONG
        } else if (c instanceof Command.PostcopyAdvise a) {
            if (a.withSizes()) checkAdvise(a);
            advised = true;
            prepareResume();
        } else if (c instanceof Command.PostcopyRamDiscard d) {
            IncomingPostcopy p = requireBlocks(c);
            String name = main.options.blockPrefix() + d.block();
            for (DiscardRange r : d.ranges()) {
                discards.add(p, name, r.start(), r.length());
                discardRanges++;
            }
        } else if (c instanceof Command.PostcopyListen) {
            IncomingPostcopy p = requireBlocks(c);
            if (!advised) throw new Refused("POSTCOPY_LISTEN without POSTCOPY_ADVISE");
            p.listen();
            main.listening = true;
            main.enter(MigrationState.POSTCOPY, null);
        } else if (c instanceof Command.PostcopyRun) {
            IncomingPostcopy p = requireBlocks(c);
            if (!main.listening) throw new Refused("POSTCOPY_RUN before POSTCOPY_LISTEN");
            p.run();
            running = true;
            resumeGuest(true);
            main.recovery.heard();
            main.recovery.watchSilence();
            main.recovery.keepAlive();
            if (switchUrgent == null) leaveSwitch();     // else once the PING after RUN is answered
        } else if (c instanceof Command.ChannelToken t) {
            // our source's extra channel will present this; QEMU never sends it
            if (inPackage || main.listener == null) throw new Refused("CHANNEL_TOKEN " + (inPackage ? "in a package" : "on a lone connection"));
            main.listener.announce(t.token(), main);
            main.announcedToken = t.token();
        } else if (c instanceof Command.PeerId p) {
            // only our source sends it: the answer cannot reach a QEMU source
            if (inPackage) throw new Refused("PEER_ID in a package");
            main.setPeerId(p.id());
            if (returnPath) main.returnPath.send(new ReturnPathMessage.PeerId(main.id()));
        } else if (c instanceof Command.RecvBitmap rb && main.state() == MigrationState.POSTCOPY_RECOVER && !inPackage) {
            main.recovery.recvBitmap(rb.block());
        } else if (c instanceof Command.PostcopyResume && main.state() == MigrationState.POSTCOPY_RECOVER && !inPackage) {
            main.recovery.resumed();
        } else if (c instanceof Command.SwitchoverStart) {
            // QEMU 10.0+: its guest stopped, the switchover begins (before the discards and the package of
            // postcopy_start, or before the last precopy sections). Only devices that prepare early care; we have none.
            if (inPackage) throw new Refused("SWITCHOVER_START (command 11) inside the package; QEMU sends it before the package");
            if (running) throw new Refused("SWITCHOVER_START (command 11) after POSTCOPY_RUN: the switchover already happened");
            if (switchoverStarted) throw new Refused("a second SWITCHOVER_START (command 11)");
            switchoverStarted = true;
            enterSwitch();      // the discards and the package follow, all of them downtime
            LOG.debug("migration {}: SWITCHOVER_START", main.id());
        } else if (c instanceof Command.Packaged) {
            if (inPackage) throw new Refused("nested PACKAGED");
            // the blob follows: onPackage
        } else {
            throw new Refused("unsupported command " + c.type() + " (command " + c.type().number() + ")"
                    + (c instanceof Command.EnableColo ? ": COLO is not supported, turn x-colo off on the source"
                    : c instanceof Command.RecvBitmap || c instanceof Command.PostcopyResume ? " outside a postcopy recovery (state " + main.state() + ")" : ""));
        }
    }

    /** PACKAGED: LISTEN, the device sections (to their handlers, or kept opaque), PING, RUN; within the device-state limit. */
    void onPackage(PackageContents pkg) throws IOException {
        discards.flush();
        long cap = (long) main.settings().limits().maxDeviceStateMiB() << 20;
        for (DeviceSection s : pkg.sections()) deviceStateBytes += s.length();
        if (deviceStateBytes > cap) {
            throw new Refused("device state: " + deviceStateBytes + " bytes in all, more than maxDeviceStateMiB "
                    + (cap >> 20) + " MiB");
        }
        for (Command c : pkg.leadingCommands()) command(c, true);
        charge();
        for (DeviceSection s : pkg.sections()) {
            DeviceStateHandler h = main.service.handler(s.idstr(), s.instanceId());
            if (h == null) {
                main.opaque.add(new OpaqueSection(s.idstr(), s.instanceId(), s.versionId(), DeviceStates.sectionBytes(pkg, s)));
                LOG.debug("migration {}: device section {}/{} kept opaque ({} bytes)", main.id(), s.idstr(), s.instanceId(), s.length());
            } else {
                DeviceStates.load(pkg, s, h);
                deviceSections++;
            }
            charge();      // a handler's time counts against the real-time budget as it goes
        }
        for (Command c : pkg.trailingCommands()) command(c, true);
    }

    /**
     * PACKAGED (or QEMU 10's SWITCHOVER_START before it): the source's guest is paused and ours not yet running, so
     * until RUN is read and its PING answered everything this thread does is downtime. It runs as an urgent thread
     * meanwhile (real time within the budget, else the urgent nice value): at its normal weight it waited behind the
     * source's sender, which streams background pages from the moment the package is sent, and after RUN behind the
     * resumed guest's real-time request threads.
     */
    private void enterSwitch() {
        if (switchUrgent != null || switched) return;
        switchThread = Thread.currentThread();
        switchNice = NativeMemory.threadNice();
        switchUrgent = Urgent.thread(main.settings(), "the stream thread of " + main.id() + " during the switch");
    }

    /** Charges the switch's work so far to the real-time budget; nothing outside the switch (one field read). */
    void charge() {
        if (switchUrgent != null) switchUrgent.charge();
    }

    /**
     * Whether a page read now ends the switch: one read after RUN, from a source that sent no PING after it. Before
     * RUN a page after SWITCHOVER_START is QEMU 10's last precopy pass, all of it downtime: the switch goes on.
     */
    boolean pageEndsSwitch() {
        return switchUrgent != null && running;
    }

    /**
     * The switch is over: back to this thread's own scheduling, and from RUN on a mover of background pages that
     * yields to a faulting guest ({@link Urgent#bulk}), measured against the weight it had before the switch. On a
     * resumed run's thread (the connection was lost between RUN and its PING) there is nothing to undo: the thread
     * that entered the switch has ended, and a resumed run does not yield ({@link StreamReader#bulk}).
     */
    void leaveSwitch() {
        if (switched) return;
        switched = true;
        UrgentThread u = switchUrgent;
        switchUrgent = null;
        boolean entered = switchThread == null || switchThread == Thread.currentThread();
        switchThread = null;
        if (!entered) return;
        if (u != null) {
            u.charge();
            NativeMemory.setThreadFair(switchNice);    // raising nice needs no privilege
        }
        if (running) main.reader.bulk = Urgent.bulk(main.settings(), "stream thread of " + main.id(), main.returnPath::requests);
    }

    /** The block list read ahead of the codec ({@link MemSizeProbe}): its page-size summary, for ADVISE. */
    void probed(List<RamBlockInfo> blocks) {
        for (RamBlockInfo b : blocks) probedSummary |= b.pageSize();
    }

    /**
     * The seed's {@code loadvm_postcopy_handle_advise}: postcopy needs the source's target page size and RAM
     * page-size summary (the OR of its blocks' page sizes) to equal ours. ADVISE comes before the block list,
     * which was read ahead ({@link MemSizeProbe}); the summary is checked again against the blocks created.
     */
    private void checkAdvise(Command.PostcopyAdvise a) throws Refused {
        if (a.targetPageSize() != TARGET_PAGE) {
            throw new Refused("POSTCOPY_ADVISE: the source's target page size is " + a.targetPageSize() + ", ours is "
                    + TARGET_PAGE + ": postcopy needs matching target page sizes");
        }
        advisedSummary = a.pageSizeSummary();
        if (probedSummary != 0) checkSummary(probedSummary, "the blocks it announces");
    }

    void checkSummary(long local, String what) throws Refused {
        if (advisedSummary != 0 && advisedSummary != local) {
            throw new Refused("POSTCOPY_ADVISE: the source's RAM page-size summary is 0x" + Long.toHexString(advisedSummary)
                    + ", ours is 0x" + Long.toHexString(local) + " (" + what + "): postcopy needs matching RAM page sizes");
        }
    }

    private IncomingPostcopy requireBlocks(Command c) throws IOException {
        IncomingPostcopy p = main.postcopy;
        if (p == null) throw new Refused(c.type() + " before the RAM block list");
        return p;
    }

    /**
     * At POSTCOPY_ADVISE, before the source pauses its guest: the thread that will resume ours at RUN, waiting. Creating
     * it at RUN cost 0.15-0.8 ms of the downtime on a busy host. {@link #joinResume} lets it go if RUN never comes.
     *
     * <p>Its wake-up ends the guest's downtime, so it waits as an urgent thread (real time within the budget, else
     * the urgent nice value): an ordinary one woke 0.7-4.6 ms after RUN behind the busy stream threads. It returns to
     * its own scheduling before calling the guest's resume, so threads the caller starts there do not inherit ours.
     */
    private void prepareResume() {
        if (resumeThread != null) return;
        Thread t = new Thread(() -> {
            int nice = NativeMemory.threadNice();
            UrgentThread urgent = Urgent.thread(main.settings(), "the thread that resumes the guest of " + main.id());
            try {
                resumeGate.await();
            } catch (InterruptedException e) {
                return;
            }
            urgent.charge();
            NativeMemory.setThreadFair(nice);    // raising nice needs no privilege
            if (!resumeAtRun) return;            // the migration ended before RUN
            try {
                main.options.guest().resume();
            } catch (RuntimeException e) {
                LOG.warn("migration {}: resuming the guest failed", main.id(), e);
            }
        }, "postcopy-resume-" + main.id());
        t.setDaemon(true);
        resumeThread = t;
        t.start();
    }

    /**
     * The guest may run here now; with {@code async}, from another thread, since it may fault on pages this thread
     * places. Without (a precopy-only end), on this thread, back at its own scheduling first: after QEMU 10's
     * SWITCHOVER_START it is still in the switch, and threads the resume starts must not inherit real time.
     */
    void resumeGuest(boolean async) {
        main.guestResumed = true;
        if (!async) {
            leaveSwitch();
            main.options.guest().resume();
            return;
        }
        prepareResume();
        resumeAtRun = true;
        resumeGate.countDown();
    }

    /**
     * Waits for a resume still on its way: it must not come after a pause (whichever thread ends the migration). A
     * resume thread still waiting for RUN is let go.
     */
    void joinResume() {
        Thread t = resumeThread;
        if (t == null) return;
        resumeGate.countDown();
        try {
            t.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (t.isAlive()) LOG.warn("migration {}: the guest's resume has not returned after 10 s", main.id());
    }
}
