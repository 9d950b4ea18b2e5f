package io.postcopy.migration.internal.source;

import static io.postcopy.migration.internal.AbstractMigration.LOG;
import static io.postcopy.migration.internal.AbstractMigration.describe;

import io.postcopy.codec.Command;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.codec.Wire;
import io.postcopy.migration.MigrationState;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Postcopy recovery, the source's side: QEMU's {@code postcopy_pause} and the resume handshake. A lost connection in
 * postcopy pauses the migration (the destination runs the guest, and only we hold its missing pages): the connections
 * are closed, the guest stays paused, the blocks stay leased and the bitmaps as they are, until an operator's resume
 * hands over an address whose handshake succeeds.
 *
 * <p>Threads: the sender waits and runs the handshake; API callers hand over the address ({@link #resumeTo}) or cancel
 * ({@link #wake}), under this object's lock.
 */
final class Recovery {
    private static final long RESUME_WAIT_NANOS = 30_000_000_000L;

    private final Outgoing o;
    /** Guarded by this object's lock. */
    private InetSocketAddress resumeTarget;

    Recovery(Outgoing o) {
        this.o = o;
    }

    /** From an API caller, in POSTCOPY_PAUSED: try this address next. */
    synchronized void resumeTo(InetSocketAddress to) {
        resumeTarget = to;
        notifyAll();
    }

    /** From cancel: the waiting sender looks again. */
    synchronized void wake() {
        notifyAll();
    }

    /** The sender's end: an address handed over late is not kept. */
    synchronized void clear() {
        resumeTarget = null;
    }

    /**
     * Pauses: each resume request is tried until one's handshake succeeds (or the migration is cancelled, which
     * throws).
     */
    void pauseUntilResumed(IOException lost) throws IOException {
        String why = o.readerFailure != null ? o.readerFailure : o.describeSource(lost);
        o.sender.stopReader();
        o.enter(MigrationState.POSTCOPY_PAUSED, why + destinationGuest() + "; waiting for resume");
        for (;;) {
            InetSocketAddress to;
            synchronized (this) {
                while (resumeTarget == null && !o.cancelled) {
                    try {
                        wait(100);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException("interrupted while paused");
                    }
                }
                to = resumeTarget;
                resumeTarget = null;
            }
            if (o.cancelled) throw new IOException("cancelled");
            try {
                handshake(to);
                return;
            } catch (IOException e) {
                String reason = o.readerFailure != null ? o.readerFailure : describe(e);
                o.sender.stopReader();
                if (o.cancelled) throw new IOException("cancelled");
                // a malformed answer to the resume (a bitmap of the wrong size or ending, an unknown block, a message
                // out of turn) ends this attempt, not the migration: the guest's missing pages exist only here, and
                // the next attempt's connection has a reader of its own
                o.enter(MigrationState.POSTCOPY_PAUSED, "resume to " + to + " failed: " + reason + "; still paused");
            }
        }
    }

    /**
     * For the reason of a pause: whether the destination had run the guest when it was lost. A migration pauses
     * only once POSTCOPY_RUN is sent; the PONG to the PING that follows it says that the destination read RUN and
     * resumed its guest, so this side's guest must not run again either way.
     */
    private String destinationGuest() {
        return o.downtime.ended() ? "; the destination was running the guest"
                : "; POSTCOPY_RUN was sent but not acknowledged: the destination may be running the guest";
    }

    /**
     * The resumed connection: our magic and the migration's token; RECV_BITMAP per block, and what the destination
     * lacks is sent again; the preempt channel again; POSTCOPY_RESUME, and on its RESUME_ACK postcopy goes on.
     */
    private void handshake(InetSocketAddress to) throws IOException {
        o.enter(MigrationState.POSTCOPY_RECOVER, null);
        o.readerFailure = null;
        o.silence.restart();
        Connections.Main main = o.connections.openMain(to, Wire.RESUME_MAGIC);
        o.writer.attach(main.enc());
        o.book.clearRequests();
        ReturnPathReader reader = o.sender.startReader(main.io());
        StreamEncoder enc = main.enc();
        for (RamBlockInfo i : o.book.infos) enc.writeCommand(new Command.RecvBitmap(i.idstr()));
        enc.flush();
        long until = System.nanoTime() + RESUME_WAIT_NANOS;
        while (reader.recvBitmaps.size() < o.book.blockCount()) {
            if (reader.end.getCount() == 0) throw new IOException("return path ended during the resume");
            if (System.nanoTime() - until > 0) throw new IOException("no received bitmap for every block within 30 s");
            LockSupport.parkNanos(1_000_000);
        }
        long unsent = o.book.retainReceived(reader.recvBitmaps);
        // the recount leaves out the preempt channel's pages so far; progress subtracts only those sent after it
        o.preemptPagesCounted = o.preempt.pages + o.preempt.zeroPages;
        if (o.options.postcopyPreempt()) o.preempt.attach(o.connections.openPreempt(to));   // before RESUME: requests come right after the ACK
        enc.writeCommand(new Command.PostcopyResume());
        enc.flush();
        try {
            if (!reader.resumeAck.await(RESUME_WAIT_NANOS, TimeUnit.NANOSECONDS)) throw new IOException("no RESUME_ACK within 30 s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for RESUME_ACK");
        }
        if (reader.end.getCount() == 0 && o.readerFailure != null) throw new IOException(o.readerFailure);
        LOG.info("migration {}: resumed to {}; {} pages to send", o.id(), o.peer(), unsent);
    }
}
