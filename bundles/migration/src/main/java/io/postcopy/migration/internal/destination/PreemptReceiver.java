package io.postcopy.migration.internal.destination;

import io.postcopy.codec.CodecException;
import io.postcopy.codec.DecoderOptions;
import io.postcopy.codec.PageBuffers;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.RamFlag;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamHandler;
import io.postcopy.codec.Wire;
import io.postcopy.migration.internal.AbstractMigration;
import io.postcopy.migration.internal.Refused;
import io.postcopy.migration.internal.Urgent;
import io.postcopy.uffd.UrgentThread;
import java.io.IOException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * The destination's end of QEMU's postcopy-preempt channel (the seed's {@code postcopy_preempt_thread}): a
 * second connection from the source that carries requested pages only, so that they never queue behind the
 * background pages of the main stream. Bare RAM records of the main stream's blocks, ended by EOS.
 *
 * <p>Its pages go through a {@link PageLoader} of its own, a whole host page at a time (the source sends a requested
 * host page complete on one channel; the seed keeps one temporary page per channel for the same reason).
 *
 * <p>Threads: {@link #run} on the listener's routing thread that attached it, renamed {@code postcopy-preempt-<id>};
 * the stream thread waits for its end ({@link #awaitEosOrComplete}, {@link #awaitEnded}) and closes it; API callers
 * read its counters.
 */
public final class PreemptReceiver implements StreamHandler {
    private final Destination main;
    private final SocketChannel channel;
    /** The channel's bytes: the connection, or TLS over it. */
    private final ByteChannel wire;
    private final String peer;
    private final CountDownLatch ended = new CountDownLatch(1);
    private volatile Throwable failure;
    private volatile boolean eos;
    /** Closed by us once every page was here (QEMU 8.0+ ends the channel without EOS): its thread's end is no failure. */
    private volatile boolean finished;
    private boolean closedBySource;
    /** Whether the channel's first bytes were looked at (a magic of ours or QEMU's multifd). */
    private boolean opened;
    /** Counted on this channel's thread, read by API callers. */
    volatile long pages, zeroPages;

    private long bufAddr;
    private PageLoader loader;

    PreemptReceiver(Destination main, SocketChannel channel, ByteChannel wire, String peer) {
        this.main = main;
        this.channel = channel;
        this.wire = wire;
        this.peer = peer;
    }

    String peer() {
        return peer;
    }

    /** From the routing thread attaching this channel: the main connection carries bulk pages only from now on. */
    void deepenMainReceiveBuffer() {
        int deeper = main.settings().preemptReceiveBufferSize();
        if (deeper <= 0) return;
        try {
            main.channel.setOption(StandardSocketOptions.SO_RCVBUF, deeper);
        } catch (IOException e) {
            AbstractMigration.LOG.debug("migration {}: SO_RCVBUF {} refused: {}", main.id(), deeper, e.toString());
        }
    }

    /**
     * Reads the channel to its EOS; on any failure ends the main migration with the reason (or pauses it, when the
     * connection was lost).
     *
     * @param buf a direct buffer in write mode, holding the bytes already read from the channel
     */
    public void run(ByteBuffer buf) {
        bufAddr = PageBuffers.address(buf);
        StreamDecoder decoder = null;
        Thread.currentThread().setName("postcopy-preempt-" + main.id());   // was the connection's own name
        try {
            UrgentThread urgent = Urgent.thread(main.settings(), "postcopy-preempt channel " + peer);
            channel.configureBlocking(true);
            boolean prefetched = buf.position() > 0;     // bytes the listener read after the token
            // our source's preempt socket has TCP_NODELAY, so no page waits for an ACK: no setsockopt per request
            boolean quickAck = !main.fromOurSource() && QuickAck.supported(channel);
            if (quickAck) QuickAck.now(channel);
            for (;;) {
                int n = prefetched ? 0 : wire.read(buf);
                prefetched = false;
                if (quickAck && n > 0) QuickAck.now(channel);
                buf.flip();
                if (!opened && buf.remaining() >= 4) {
                    if (!checkMagic(buf, n)) {
                        buf.compact();
                        continue;
                    }
                    opened = true;
                }
                if (decoder == null && buf.remaining() < 8 && n >= 0) {
                    buf.compact();       // the first record's header first
                    continue;
                }
                if (decoder == null && buf.hasRemaining()) {
                    if (buf.getLong(buf.position()) == RamFlag.EOS.bit()) {
                        // EOS first: nothing was requested. The source writes it right after the main stream's
                        // EOF, so it can come before the main thread has read LISTEN (a migration that converged
                        // in precopy): wait for that instead of calling it a protocol violation
                        main.awaitListeningOrEnd();
                    }
                    if (!main.listening) throw new Refused("bytes on the postcopy-preempt channel before POSTCOPY_LISTEN");
                    List<RamBlockInfo> blocks = main.streamBlocks;
                    decoder = StreamDecoder.forPostcopyChannel(this, DecoderOptions.defaults(), blocks);
                    loader = PageLoader.hostPages(main, blocks);
                }
                boolean done = decoder != null && decoder.decode(buf);
                buf.compact();
                urgent.charge();
                if (done) break;
                if (n < 0) {
                    closedBySource = true;
                    if (decoder == null && !main.isListening()) {
                        // postcopy never started (a precopy-only end): QEMU closes the unused channel without EOS
                        AbstractMigration.LOG.info("postcopy-preempt channel {} closed unused", peer);
                        eos = true;
                        break;
                    }
                    if (decoder == null) throw new Refused("closed by the source before any page or EOS");
                    decoder.finish();
                }
            }
            if (loader != null) loader.checkNoPartialHostPage();
            eos = true;
        } catch (Throwable t) {
            if (finished) {
                eos = true;      // we closed it: every page was already here
                return;
            }
            failure = t;
            // the connection itself lost (a reset, an abort), not a protocol error
            boolean lost = t instanceof IOException && !(t instanceof Refused) && !(t instanceof CodecException);
            if (closedBySource || lost) {
                // a source that goes away closes both connections: let the main stream's own end tell why
                long deadline = System.nanoTime() + 1_000_000_000L;
                while (!main.ending() && !main.isPaused() && System.nanoTime() < deadline) LockSupport.parkNanos(2_000_000);
            }
            if (!main.ending() && !main.isPaused() && !(lost && main.channelLost(t, peer))) {
                main.refuse("postcopy-preempt channel " + peer + ": " + (t instanceof Refused ? t.getMessage() : AbstractMigration.describe(t)));
            }
        } finally {
            if (loader != null) loader.free();
            close();
            ended.countDown();
        }
    }

    /**
     * The channel's first bytes: QEMU's multifd magic is refused; our own magic (a source of ours on a QEMU-rule
     * listener) must carry this migration's token, which is skipped. False while the token is not all here.
     */
    private boolean checkMagic(ByteBuffer buf, int n) throws IOException {
        int magic = buf.getInt(buf.position());
        if (magic == Wire.MULTIFD_MAGIC) {
            throw new Refused("QEMU opened a multifd channel (" + peer + ") for this migration: capability"
                    + " multifd is not supported, turn it off on the source");
        }
        if (magic == Wire.CHANNEL_MAGIC) {
            int need = 4 + Wire.CHANNEL_TOKEN_BYTES;
            if (buf.remaining() < need) {
                if (n < 0) throw new Refused("closed by the source inside its channel token");
                return false;
            }
            byte[] token = new byte[Wire.CHANNEL_TOKEN_BYTES];
            buf.get(buf.position() + 4, token);
            if (!main.tokenMatches(token, System.nanoTime() + main.settings().limits().firstBytesMillis() * 1_000_000L)) {
                throw new Refused("a channel token that is not this migration's");
            }
            buf.position(buf.position() + need);
        }
        return true;
    }

    /** Waits for EOS; throws with the reason if the channel failed or stays open longer than {@code millis}. */
    private void awaitEos(long millis) throws IOException, InterruptedException {
        if (!ended.await(millis, TimeUnit.MILLISECONDS)) {
            throw new IOException("postcopy-preempt channel " + peer + ": no EOS within " + millis + " ms of the main stream's EOF");
        }
        if (!eos) {
            Throwable t = failure;
            throw new IOException("postcopy-preempt channel " + peer + ": "
                    + (t == null ? "ended without EOS" : AbstractMigration.describe(t)), t);
        }
    }

    /**
     * The main stream's EOF in postcopy: the channel is done at its EOS (QEMU 7.2, or 8.0+ with a 7.2 machine type:
     * x-preempt-pre-7-2) or, as QEMU 8.0+'s own destination does it, once no page is missing any more: then nothing
     * is left to come on it (8.0+ sends no EOS and keeps the socket open until our SHUT), and we close it.
     * Whichever comes first; what the source sent decides, not its version.
     *
     * @param complete whether every page of every block is present
     * @return how it ended: "EOS" or "every page received"
     */
    String awaitEosOrComplete(BooleanSupplier complete, long millis) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        for (;;) {
            if (ended.await(2, TimeUnit.MILLISECONDS)) {
                awaitEos(0);
                return finished ? "every page received" : "EOS";
            }
            if (complete.getAsBoolean()) {
                finished = true;
                close();
                if (!ended.await(5, TimeUnit.SECONDS)) {
                    throw new IOException("postcopy-preempt channel " + peer + ": its thread did not end after the close");
                }
                return "every page received";
            }
            if (System.nanoTime() > deadline) {
                throw new IOException("postcopy-preempt channel " + peer + ": neither EOS nor every page received within "
                        + millis + " ms of the main stream's EOF");
            }
        }
    }

    /** Waits up to {@code millis} for this channel's thread to end; true when it has. */
    boolean awaitEnded(long millis) {
        try {
            return ended.await(millis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    void close() {
        Destination.closeQuietly(channel);
    }

    @Override
    public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) throws IOException {
        pages++;
        loader.hostPagePart(block, offset, bufAddr + position, length);
    }

    @Override
    public void onZero(RamBlockInfo block, long offset, int fill, int length) throws IOException {
        zeroPages++;
        if (fill != 0) throw new CodecException(CodecException.Kind.UNSUPPORTED, -1, "ZERO fill", fill, "0");
        loader.hostPagePart(block, offset, 0, length);
    }
}
