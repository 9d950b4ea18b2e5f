package io.postcopy.migration.internal.source;

import static io.postcopy.migration.internal.AbstractMigration.LOG;
import static io.postcopy.migration.internal.AbstractMigration.describe;

import io.postcopy.codec.BlockValidator;
import io.postcopy.codec.CodecException;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.Wire;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.Urgent;
import io.postcopy.uffd.UrgentThread;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;

/**
 * The return path of one main connection (the seed's {@code source_return_path_thread}), on its own thread
 * {@code postcopy-rp-ID}: decodes the destination's messages. A page request goes to the preempt channel, written on
 * this thread ({@link PreemptSender}), or without one into the {@link PageBook}'s queue for the sender; PONGs release
 * what the sender waits for; SHUT ends it. A well-formed message out of place, like a malformed one, fails the
 * migration (no pause). A resumed connection gets a reader of its own.
 *
 * <p>Threads: this reader's thread runs {@link #run}; the sender starts it, waits on its latches and reads
 * {@link #shutStatus} and {@link #malformed}.
 */
final class ReturnPathReader {
    private final Outgoing o;
    private final ByteChannel io;
    private final Thread thread;
    /** Counted down when the return path ends: SHUT, or the thread's end. */
    final CountDownLatch end = new CountDownLatch(1);
    /** The PONGs to {@link SourceRun#FIRST_PING} and {@link SourceRun#READY_PING}; a resumed destination's RESUME_ACK. */
    final CountDownLatch firstPong = new CountDownLatch(1), readyPong = new CountDownLatch(1), resumeAck = new CountDownLatch(1),
            discardedPong = new CountDownLatch(1);
    /** The received bitmaps a resumed destination sends, by block. */
    final Map<String, ByteBuffer> recvBitmaps = new ConcurrentHashMap<>();
    volatile Integer shutStatus;
    /** The return path carried something malformed or out of place: no pause for that, a failure. */
    volatile boolean malformed;
    /** REQ_PAGES without a block name means the block of the last named one. This thread only. */
    private int lastRequestBlock = -1;
    /** This thread's scheduling while it writes requested pages on the preempt channel; else null. This thread only. */
    private UrgentThread urgent;

    /** A well-formed return-path message that has no place here: the migration fails, it does not pause. */
    private static final class UnexpectedMessage extends IOException {
        private static final long serialVersionUID = 1L;

        UnexpectedMessage(String message) {
            super(message);
        }
    }

    private ReturnPathReader(Outgoing o, ByteChannel io) {
        this.o = o;
        this.io = io;
        thread = new Thread(this::run, "postcopy-rp-" + o.id());
        thread.setDaemon(true);
    }

    /** A reader on {@code io}, running. */
    static ReturnPathReader start(Outgoing o, ByteChannel io) {
        ReturnPathReader r = new ReturnPathReader(o, io);
        r.thread.start();
        return r;
    }

    Thread thread() {
        return thread;
    }

    private void run() {
        if (o.preempt.open()) urgent = Urgent.thread(o.service.settings(), "return-path thread of " + o.id());
        ReturnPathDecoder dec = new ReturnPathDecoder((m, off) -> onMessage(m), new BlockValidator(List.of(o.book.infos)),
                Wire.DEFAULT_MAX_PACKAGED_SIZE);
        try {
            dec.decode(io);
            if (!dec.shut() && !o.cancelled) o.readerFailed("return path: destination closed the connection before SHUT");
        } catch (IOException e) {
            if (e instanceof CodecException || e instanceof UnexpectedMessage) malformed = true;
            if (!o.cancelled && shutStatus == null) o.readerFailed("return path: " + (tlsRecord(e)
                    ? "the destination answered with a TLS record (an alert): it takes TLS connections only; give"
                    + " the source TLS credentials (postcopy:migrate --tls-creds DIR)" : describe(e)));
        } finally {
            end.countDown();
        }
    }

    /** A plain source's first return-path bytes are a TLS record (content type 21 or 22, version 3.x). */
    private boolean tlsRecord(IOException e) {
        if (o.connections.usesTls() || !(e instanceof CodecException ce) || ce.offset() != 0) return false;
        try {
            int type = Integer.parseInt(ce.value());
            return (type >> 8 == 0x15 || type >> 8 == 0x16) && (type & 0xff) == 0x03;
        } catch (NumberFormatException notANumber) {
            return false;
        }
    }

    private void onMessage(ReturnPathMessage m) throws IOException {
        o.silence.heard();
        if (m instanceof ReturnPathMessage.ReqPagesId r) {
            request(r.block(), r.start(), true);
            if (urgent != null) urgent.charge();
        } else if (m instanceof ReturnPathMessage.ReqPages r) {
            request(null, r.start(), false);
            if (urgent != null) urgent.charge();
        } else if (m instanceof ReturnPathMessage.Pong p) {
            if (p.value() == SourceRun.POST_PACKAGE_PING) o.downtime.end();
            if (p.value() == SourceRun.READY_PING) readyPong.countDown();
            if (p.value() == SourceRun.PRE_DISCARD_PING) discardedPong.countDown();
            if (p.value() == SourceRun.FIRST_PING) firstPong.countDown();
            LOG.debug("migration {}: PONG {}", o.id(), p.value());
        } else if (m instanceof ReturnPathMessage.PeerId p) {
            o.peerId = p.id();
        } else if (m instanceof ReturnPathMessage.Shut s) {
            // completed in precopy: the destination resumes its guest at EOF, right before SHUT 0
            if (s.status() == 0) o.downtime.end();
            shutStatus = s.status();
            LOG.debug("migration {}: SHUT {}", o.id(), s.status());
            end.countDown();
        } else if (m instanceof ReturnPathMessage.RecvBitmap rb && o.state() == MigrationState.POSTCOPY_RECOVER) {
            if (recvBitmaps.putIfAbsent(rb.block(), rb.bitmap()) != null)
                throw new UnexpectedMessage("a second RECV_BITMAP for block " + rb.block());
        } else if (m instanceof ReturnPathMessage.ResumeAck a && o.state() == MigrationState.POSTCOPY_RECOVER
                && recvBitmaps.size() == o.book.blockCount()) {
            if (a.value() != 1) throw new UnexpectedMessage("RESUME_ACK " + a.value() + ", expected 1");
            o.enter(MigrationState.POSTCOPY, null);    // here: the requests sent again come right after it
            resumeAck.countDown();
        } else {
            throw new UnexpectedMessage("unexpected return-path message " + m.type() + " in state " + o.state());
        }
    }

    /** The seed's {@code migrate_handle_rp_req_pages}: valid in postcopy only. */
    private void request(String block, long start, boolean named) throws IOException {
        int bi = lastRequestBlock;
        if (named) {
            bi = o.book.indexOf(block);
            lastRequestBlock = bi;      // the codec already checked the block against our list
        }
        if (o.state() != MigrationState.POSTCOPY) {
            throw new IOException("page request for " + o.book.infos[bi].idstr() + " offset 0x" + Long.toHexString(start)
                    + " in state " + o.state() + " (requests are only valid in postcopy)");
        }
        o.requests++;
        LOG.debug("migration {}: request {} 0x{}", o.id(), o.book.infos[bi].idstr(), Long.toHexString(start));
        long page = start >>> o.book.shift(bi);
        if (o.preempt.open()) {
            o.preempt.send(bi, page);
        } else {
            o.book.queueRequest(bi, page);
        }
    }
}
