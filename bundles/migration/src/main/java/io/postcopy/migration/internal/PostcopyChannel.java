package io.postcopy.migration.internal;

import io.postcopy.codec.CodecException;
import io.postcopy.codec.DecoderOptions;
import io.postcopy.codec.PageBuffers;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamHandler;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The destination's end of QEMU's postcopy-preempt channel (the seed's {@code postcopy_preempt_thread}): a
 * second connection from the source that carries requested pages only, so that they never queue behind the
 * background pages of the main stream. Bare RAM records of the main stream's blocks, ended by EOS.
 *
 * <p>Pages are placed a whole host page at a time (the source sends a requested host page complete on one
 * channel; the seed keeps one temporary page per channel for the same reason), from this channel's own
 * staging area, so that a huge page being gathered from the main stream is never mixed with this one.
 */
public final class PostcopyChannel implements StreamHandler {
    private final Destination main;
    private final SocketChannel channel;
    /** The channel's bytes: the connection, or TLS over it. */
    private final java.nio.channels.ByteChannel wire;
    final String peer;
    private final CountDownLatch ended = new CountDownLatch(1);
    private volatile Throwable failure;
    private volatile boolean eos;
    /** Closed by us once every page was here (QEMU 8.0+ ends the channel without EOS): its thread's end is no failure. */
    private volatile boolean finished;
    private boolean closedBySource;
    /** Whether the channel's first bytes were looked at (a magic of ours or QEMU's multifd). */
    private boolean opened;
    volatile long pages, zeroPages;

    private long bufAddr;
    private long stageMem, stage, stageSize;
    private int stageBlock = -1;
    private long stageHost, stageFill;

    PostcopyChannel(Destination main, SocketChannel channel, java.nio.channels.ByteChannel wire, String peer) {
        this.main = main;
        this.channel = channel;
        this.wire = wire;
        this.peer = peer;
    }

    /**
     * Reads the channel to its EOS; on any failure ends the main migration with the reason.
     *
     * @param buf a direct buffer in write mode, holding the bytes already read from the channel
     */
    public void run(ByteBuffer buf) {
        bufAddr = PageBuffers.address(buf);
        StreamDecoder decoder = null;
        Thread.currentThread().setName("postcopy-preempt-" + main.id());   // was the connection's own name
        try {
            io.postcopy.uffd.UrgentThread urgent = Urgent.thread(main.settings(), "postcopy-preempt channel " + peer);
            channel.configureBlocking(true);
            boolean prefetched = buf.position() > 0;     // bytes the listener read after the token
            boolean quickAck = QuickAck.supported(channel);
            if (quickAck) QuickAck.now(channel);
            for (;;) {
                int n = prefetched ? 0 : wire.read(buf);
                prefetched = false;
                if (quickAck && n > 0) QuickAck.now(channel);
                buf.flip();
                if (!opened && buf.remaining() >= 4) {
                    int magic = buf.getInt(buf.position());
                    if (magic == io.postcopy.codec.Wire.MULTIFD_MAGIC) {
                        throw new Refused("QEMU opened a multifd channel (" + peer + ") for this migration: capability"
                                + " multifd is not supported, turn it off on the source");
                    }
                    if (magic == io.postcopy.codec.Wire.CHANNEL_MAGIC) {
                        // our own source on a QEMU-rule listener: the token must still be this migration's
                        int need = 4 + io.postcopy.codec.Wire.CHANNEL_TOKEN_BYTES;
                        if (buf.remaining() < need) {
                            if (n < 0) throw new Refused("closed by the source inside its channel token");
                            buf.compact();
                            continue;
                        }
                        byte[] token = new byte[io.postcopy.codec.Wire.CHANNEL_TOKEN_BYTES];
                        buf.get(buf.position() + 4, token);
                        if (!main.tokenMatches(token, System.nanoTime() + main.settings().limits().firstBytesMillis() * 1_000_000L)) {
                            throw new Refused("a channel token that is not this migration's");
                        }
                        buf.position(buf.position() + need);
                    }
                    opened = true;
                }
                if (decoder == null && buf.remaining() < 8 && n >= 0) {
                    buf.compact();       // the first record's header first
                    continue;
                }
                if (decoder == null && buf.hasRemaining()) {
                    if (buf.getLong(buf.position()) == io.postcopy.codec.RamFlag.EOS.bit()) {
                        // EOS first: nothing was requested. The source writes it right after the main stream's
                        // EOF, so it can come before the main thread has read LISTEN (a migration that converged
                        // in precopy): wait for that instead of calling it a protocol violation
                        main.awaitListeningOrEnd();
                    }
                    List<RamBlockInfo> blocks = main.postcopyChannelBlocks();
                    decoder = StreamDecoder.forPostcopyChannel(this, DecoderOptions.defaults(), blocks);
                    long largest = 0;
                    for (RamBlockInfo b : blocks) largest = Math.max(largest, b.pageSize());
                    stageSize = largest;
                    if (largest > Destination.TARGET_PAGE) {
                        // page-aligned: a whole huge page is placed with one UFFDIO_COPY straight from here
                        stageMem = NativeMemory.allocate(largest + Destination.TARGET_PAGE);
                        stage = (stageMem + Destination.TARGET_PAGE - 1) & -(long) Destination.TARGET_PAGE;
                    }
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
            if (stageFill != 0) {
                throw new Refused("EOS with host page 0x" + Long.toHexString(stageHost) + " incomplete ("
                        + stageFill + " bytes)");
            }
            eos = true;
        } catch (Throwable t) {
            if (finished) {
                eos = true;      // we closed it: every page was already here
                return;
            }
            failure = t;
            // the connection itself lost (a reset, an abort), not a protocol error
            boolean lost = t instanceof IOException && !(t instanceof Refused) && !(t instanceof io.postcopy.codec.CodecException);
            if (closedBySource || lost) {
                // a source that goes away closes both connections: let the main stream's own end tell why
                long deadline = System.nanoTime() + 1_000_000_000L;
                while (!main.ending() && !main.isPaused() && System.nanoTime() < deadline) {
                    java.util.concurrent.locks.LockSupport.parkNanos(2_000_000);
                }
            }
            if (!main.ending() && !main.isPaused() && !(lost && main.channelLost(t, peer))) {
                main.refuse("postcopy-preempt channel " + peer + ": " + (t instanceof Refused ? t.getMessage() : AbstractMigration.describe(t)));
            }
        } finally {
            if (stageMem != 0) NativeMemory.free(stageMem);
            stageMem = stage = 0;
            close();
            ended.countDown();
        }
    }

    /** Waits for EOS; throws with the reason if the channel failed or stays open longer than {@code millis}. */
    void awaitEos(long millis) throws IOException, InterruptedException {
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
    String awaitEosOrComplete(java.util.function.BooleanSupplier complete, long millis) throws IOException, InterruptedException {
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
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    @Override
    public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) throws IOException {
        pages++;
        put(block, offset, bufAddr + position, length);
    }

    @Override
    public void onZero(RamBlockInfo block, long offset, int fill, int length) throws IOException {
        zeroPages++;
        if (fill != 0) throw new CodecException(CodecException.Kind.UNSUPPORTED, -1, "ZERO fill", fill, "0");
        put(block, offset, 0, length);
    }

    /** One target page ({@code src} 0: zeroes): placed at once for small pages, gathered for huge ones. */
    private void put(RamBlockInfo block, long offset, long src, int length) throws IOException {
        long hps = block.pageSize();
        if (hps == length) {
            main.placeFromPostcopyChannel(block.index(), offset, src, length, src == 0);
            return;
        }
        long host = offset & ~(hps - 1);
        if (stageFill == 0) {
            if (offset != host) throw nonSameHostPage(block, offset);
            stageBlock = block.index();
            stageHost = host;
        } else if (stageBlock != block.index() || stageHost + stageFill != offset) {
            throw nonSameHostPage(block, offset);
        }
        if (src == 0) NativeMemory.fill(stage + stageFill, length, (byte) 0);
        else NativeMemory.copy(src, stage + stageFill, length);   // our memory to our memory
        stageFill += length;
        if (stageFill == hps) {
            stageFill = 0;
            main.placeFromPostcopyChannel(stageBlock, stageHost, stage, hps, false);
        }
    }

    private Refused nonSameHostPage(RamBlockInfo block, long offset) {
        return new Refused("page " + block.idstr() + " 0x" + Long.toHexString(offset) + " does not continue "
                + (stageFill == 0 ? "at a host page boundary" : "host page 0x" + Long.toHexString(stageHost)
                + " (" + stageFill + " of " + stageSize + " bytes)") + ": a requested host page comes whole on this channel");
    }
}
