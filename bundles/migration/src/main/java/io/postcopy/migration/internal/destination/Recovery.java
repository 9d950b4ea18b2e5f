package io.postcopy.migration.internal.destination;

import static io.postcopy.migration.internal.AbstractMigration.LOG;
import static io.postcopy.migration.internal.AbstractMigration.describe;

import io.postcopy.codec.CodecException;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.SectionHeader;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.Refused;
import java.io.IOException;
import java.net.StandardSocketOptions;
import java.util.List;
import jdk.net.ExtendedSocketOptions;

/**
 * Postcopy recovery on the destination (QEMU's postcopy-paused / postcopy-recover): once the guest runs here, a lost
 * connection pauses the migration instead of failing it, and the source resumes it on a new one (RECV_BITMAP per
 * block, POSTCOPY_RESUME). Also how a lost connection is noticed: silence from our source (it PINGs), TCP keepalive
 * for QEMU's.
 *
 * <p>Threads: the stream thread pauses, answers the resume and starts the watch at RUN; {@link #watchSilence} then
 * runs on the service's deadline thread; {@link #pauseAsked} comes from an API caller, {@link #channelLost} from the
 * preempt channel's thread. The fields they share are volatile.
 */
final class Recovery {
    private final Destination main;
    /** Set by {@link #pauseAsked()}: the connection was closed here on purpose. */
    private volatile boolean pauseAsked;
    /** The stream's RAM section, for a resumed connection to go on in. */
    private volatile SectionHeader ramSection;
    private volatile long lastBytesNanos = System.nanoTime();
    /** Why this side closed the connection: it stayed silent, or the postcopy-preempt channel was lost. */
    private volatile String silence;

    Recovery(Destination main) {
        this.main = main;
    }

    /** Bytes came from the source (or the stream starts or goes on): silence is counted from now. */
    void heard() {
        lastBytesNanos = System.nanoTime();
    }

    SectionHeader ramSection() {
        return ramSection;
    }

    /** The API's pause: close the connection; the stream thread finds it lost, and the migration pauses. */
    void pauseAsked() {
        pauseAsked = true;
        main.closeQuietly();
    }

    /**
     * A lost connection once the guest runs here pauses the migration (QEMU's postcopy-paused) instead of failing
     * it: the guest holds pages that exist nowhere else now. Anything else (bad input, a local failure, a cancel)
     * still fails it.
     */
    boolean recoverable(Throwable t) {
        if (main.cancelled || main.ending || !main.listening || !main.guestResumed || main.listener == null) return false;
        Throwable cause = main.asyncFailure != null ? main.asyncFailure : t;
        if (cause instanceof Refused) return false;
        if (cause instanceof CodecException) return EndReport.endOfInput(cause);
        return cause instanceof IOException;
    }

    /**
     * From the stream thread, its connection lost (the pages staged from it already placed): the connections are
     * closed and the migration waits for its source to come back. The fault thread goes on: faulting guest threads
     * stay blocked, their requests are asked again after the resume; a host page partly gathered is forgotten.
     */
    void pause(Throwable t, StreamDecoder decoder) {
        main.paused = true;
        main.closeQuietly();
        PreemptReceiver pc = main.preempt;
        if (pc != null) {
            pc.close();
            pc.awaitEnded(10_000);
            main.preempt = null;
        }
        main.postcopy.dropPartialPages();
        if (ramSection == null && decoder != null) ramSection = decoder.ramSection();
        main.asyncFailure = null;
        // a resumed source of ours opens its preempt channel again with the token; QEMU's comes to postcopy:recover
        byte[] token = main.announcedToken;
        if (token != null) main.listener.reannounce(token, main);
        String why = pauseAsked ? "paused on the destination (pause)" : silence != null ? silence
                : t instanceof CodecException ? "connection closed by the source" : describe(t);
        silence = null;
        pauseAsked = false;
        main.enter(MigrationState.POSTCOPY_PAUSED, why + (token != null ? "; waiting for the source to resume"
                : "; waiting for the source to resume (QEMU: recover here, then migrate with resume=true)"));
    }

    /**
     * From the postcopy-preempt channel's thread: its connection was lost (reset, aborted) while the main one seems
     * not to be. That is a lost connection all the same: if this migration can pause, its main connection is closed
     * too, so that the stream thread pauses it (the source's resume opens both again). False when it cannot pause.
     */
    boolean channelLost(Throwable t, String channelPeer) {
        if (!recoverable(t)) return false;
        silence = "postcopy-preempt channel " + channelPeer + " lost: " + describe(t);
        main.closeQuietly();
        return true;
    }

    /** RECV_BITMAP on a resumed stream: what arrived of the block, for the source to send the rest. */
    void recvBitmap(String wireName) throws IOException {
        String name = main.options.blockPrefix() + wireName;
        if (main.service.registry().byName(name) == null || streamBlockIndex(wireName) < 0)
            throw new Refused("RECV_BITMAP for block " + wireName + ", not one of this migration's");
        main.returnPath.send(new ReturnPathMessage.RecvBitmap(wireName, main.postcopy.receivedBitmap(name)));
    }

    /** POSTCOPY_RESUME: RESUME_ACK, postcopy again, and the requests of the guest threads still waiting. */
    void resumed() throws IOException {
        main.returnPath.send(new ReturnPathMessage.ResumeAck(1));
        main.paused = false;
        main.enter(MigrationState.POSTCOPY, null);
        int again = main.postcopy.resendRequests();
        LOG.info("migration {}: resumed from {}; {} page requests sent again", main.id(), main.peer(), again);
    }

    /** The index of block {@code wireName} in the stream's block list, or -1. */
    private int streamBlockIndex(String wireName) {
        List<RamBlockInfo> blocks = main.streamBlocks;
        if (blocks != null) for (RamBlockInfo b : blocks) if (b.idstr().equals(wireName)) return b.index();
        return -1;
    }

    /**
     * Our source PINGs at least every third of the silence timeout: nothing for the whole timeout while the guest
     * runs here means the connection is lost, even with no reset or FIN. Closing it pauses the migration. QEMU
     * sources are not watched (they send nothing while throttled, and cannot resume here yet).
     */
    void watchSilence() {
        if (main.state().isFinal()) return;
        long timeout = main.settings().limits().silenceMillis() * 1_000_000L;
        if (main.state() == MigrationState.POSTCOPY && !main.paused && main.announcedToken != null
                && System.nanoTime() - lastBytesNanos > timeout) {
            silence = "no bytes from the source for " + timeout / 1_000_000 + " ms (silenceTimeoutMillis)";
            LOG.info("migration {}: {}", main.id(), silence);
            main.closeQuietly();
        }
        main.service.after(Math.max(25, timeout / 4_000_000), this::watchSilence);
    }

    /**
     * A QEMU source sends nothing while its bandwidth limit holds it back, so silence proves nothing there: TCP
     * keepalive probes the connection instead, and a peer that stopped answering ends it within about
     * {@code silenceTimeoutMillis} (idle a third of it, then three probes), which pauses the migration.
     */
    void keepAlive() {
        if (main.announcedToken != null) return;       // ours PINGs; watchSilence hears it
        int seconds = Math.max(3, main.settings().limits().silenceMillis() / 1000);
        try {
            main.channel.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
            main.channel.setOption(ExtendedSocketOptions.TCP_KEEPIDLE, Math.max(1, seconds / 3));
            main.channel.setOption(ExtendedSocketOptions.TCP_KEEPINTERVAL, Math.max(1, seconds / 9));
            main.channel.setOption(ExtendedSocketOptions.TCP_KEEPCOUNT, 3);
        } catch (IOException | UnsupportedOperationException e) {
            LOG.debug("migration {}: TCP keepalive not set: {}", main.id(), e.toString());
        }
    }
}
