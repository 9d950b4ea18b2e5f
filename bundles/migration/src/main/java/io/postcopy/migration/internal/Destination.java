package io.postcopy.migration.internal;

import io.postcopy.codec.CodecException;
import io.postcopy.codec.Command;
import io.postcopy.codec.DecoderOptions;
import io.postcopy.codec.DeviceSection;
import io.postcopy.codec.DiscardRange;
import io.postcopy.codec.PackageContents;
import io.postcopy.codec.PageBuffers;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathEncoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamHandler;
import io.postcopy.codec.Wire;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.MissingPages;
import io.postcopy.fault.PageRequester;
import io.postcopy.migration.DeviceStateHandler;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.channel.Listener;
import io.postcopy.migration.internal.channel.TlsWire;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The destination: the seed's {@code qemu_loadvm_state} + {@code ram_load_postcopy} +
 * {@code loadvm_postcopy_handle_*}. One thread decodes the stream from the socket into a direct receive
 * buffer and drives the fault service through ADVISE → DISCARD → LISTENING → RUNNING → END; the fault
 * thread writes page requests on the same connection.
 *
 * <p>Block memory is never read or written from Java here while it may be registered: pages go from the
 * receive buffer (or the staging area, our own memory) into the blocks through {@code UFFDIO_COPY}.
 * Contiguous PAGE records are gathered in the staging area and placed with one call per run; staged pages
 * are placed before any command, and before the thread blocks on the socket, so a requested page never
 * waits for the next one.
 */
public final class Destination extends AbstractMigration implements IncomingMigration, StreamHandler, PageRequester {
    private static final int RECEIVE_BUFFER = 1 << 20;
    private static final long MAX_ZERO_RUN = 2 << 20;


    private final MigrationServiceImpl service;
    private final IncomingOptions options;
    /** The TCP connection: socket options, close. A resumed migration gets a new one. */
    private volatile SocketChannel channel;
    /** Its bytes: the connection itself, or TLS over it. */
    private volatile java.nio.channels.ByteChannel wire;
    private final int batch;
    private final int maxPackage;

    private StreamDecoder decoder;
    private long bufAddr;
    private RamBlock[] local;
    private final List<RamBlock> created = new CopyOnWriteArrayList<>();
    private volatile IncomingPostcopy postcopy;
    private boolean returnPath, advised, running, eof;
    /** QEMU 10.0+'s SWITCHOVER_START seen (at most once, before RUN). */
    private boolean switchoverStarted;
    /** From LISTEN on, pages are placed with UFFDIO_COPY; read by the postcopy channel's thread too. */
    private volatile boolean listening;
    /** The stream's block list (MEM_SIZE), for the postcopy channel. */
    private volatile List<RamBlockInfo> streamBlocks;
    /** The postcopy-preempt channel of this migration, once the listener has routed one here. */
    private volatile PostcopyChannel postcopyChannel;
    /**
     * How long the main stream's EOF waits for the postcopy channel to be done: its EOS (QEMU 7.2 sends it right after
     * EOF) or every page received (QEMU 8.0+ sends no EOS).
     */
    static final long POSTCOPY_CHANNEL_EOS_MILLIS = 30_000;
    /** From POSTCOPY_ADVISE (0: none, or the short form); the OR of the block page sizes read ahead (0: unknown). */
    private long advisedSummary, probedSummary;
    private volatile boolean guestResumed, cancelled;
    /** The thread that resumes the guest at RUN. */
    private volatile Thread resumeThread;
    private volatile Throwable asyncFailure;
    private volatile MissingPages missing;
    private final List<OpaqueSection> opaque = new CopyOnWriteArrayList<>();

    // staging: one pending run, of pages or of zero pages
    private long stage;
    private int stageBlock = -1;
    private long stageOffset, stageLength;
    private boolean stageZero;
    private long fillPage;

    // the return path: the fault thread's requests and the decoder's PONGs, serialised
    private final Object rpLock = new Object();
    private ReturnPathEncoder rpEncoder = new ReturnPathEncoder();    // guarded by rpLock
    private final ByteBuffer rpBuf = ByteBuffer.allocateDirect(Wire.MAX_RETURN_PATH_PAYLOAD + 8);
    private String lastRequestWire;

    /** The listener that routed this connection here; null: a lone connection (no extra channels). */
    private final Listener listener;
    /** The main connection's remote host, kept for after its close. */
    private java.net.InetAddress sourceHost;
    /** Whether the source announced a channel (CHANNEL_TOKEN): it will come, and may carry requested pages. */
    private volatile boolean channelAnnounced;
    private volatile byte[] announcedToken;

    /**
     * From the postcopy channel's thread (QEMU's rule put it here, yet it shows our magic): whether {@code token}
     * is the one this migration announced, waiting for the announcement up to {@code deadline}.
     */
    boolean tokenMatches(byte[] token, long deadline) {
        while (announcedToken == null && !ending() && System.nanoTime() < deadline)
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        byte[] mine = announcedToken;
        return mine != null && java.security.MessageDigest.isEqual(mine, token);
    }

    /** The 4 KiB-page RAM this migration was admitted with (service limits). */
    private volatile long admittedRam;
    private long deviceStateBytes;

    /** RAM this live migration may still need: admitted, less what has arrived. */
    long outstandingRam() {
        IncomingPostcopy p = postcopy;
        long received = p == null || local == null ? 0 : receivedTargetPages(p) * TARGET_PAGE;
        return Math.max(0, admittedRam - received);
    }

    private volatile long pages, zeroPages, totalPages, discardRanges, requests, postcopyPageBytes;
    private volatile int deviceSections;

    Destination(String id, MigrationServiceImpl service, SocketChannel channel, java.nio.channels.ByteChannel wire,
                IncomingOptions options, Listener listener) {
        super(id);
        this.service = service;
        this.channel = channel;
        this.wire = wire;
        this.options = options;
        this.listener = listener;
        this.batch = options.stagingBatchSize() > 0 ? options.stagingBatchSize() : service.settings().stagingBatchSize();
        this.maxPackage = options.maxPackageSize() > 0 ? options.maxPackageSize() : service.settings().maxPackageSize();
        try {
            this.peer = channel.getRemoteAddress().toString();
            this.sourceHost = ((java.net.InetSocketAddress) channel.getRemoteAddress()).getAddress();
        } catch (IOException e) {
            this.peer = "?";
        }
    }

    /** A receive buffer: direct, so that pages go from it to the blocks by address. */
    public static ByteBuffer receiveBuffer() {
        return ByteBuffer.allocateDirect(Math.max(RECEIVE_BUFFER, StreamDecoder.MIN_BUFFER_CAPACITY));
    }

    @Override
    public List<RamBlock> blocks() {
        return List.copyOf(created);
    }

    @Override
    public Optional<MissingPages> missing() {
        return Optional.ofNullable(missing);
    }

    @Override
    public List<OpaqueSection> opaqueSections() {
        return List.copyOf(opaque);
    }

    @Override
    public Optional<FaultStatistics> statistics() {
        IncomingPostcopy p = postcopy;
        return p == null ? Optional.empty() : Optional.of(p.statistics());
    }

    @Override
    public MigrationProgress progress() {
        StreamDecoder d = decoder;
        long total = totalPages;
        long remaining = total;
        IncomingPostcopy p = postcopy;
        if (p != null && state() != MigrationState.COMPLETED) {
            remaining = Math.max(0, total - receivedTargetPages(p));
        } else if (state() == MigrationState.COMPLETED) {
            remaining = 0;
        }
        PostcopyChannel pc = postcopyChannel;
        long chPages = pc == null ? 0 : pc.pages, chZero = pc == null ? 0 : pc.zeroPages;
        long bytes = postcopyPageBytes + chPages * TARGET_PAGE;
        return new MigrationProgress(d == null ? 0 : d.offset(), pages + chPages, zeroPages + chZero, total, remaining, 0, 0,
                discardRanges, requests, 0, bytes, postcopyNanos(), throughput(bytes, (pages + chPages) * TARGET_PAGE),
                deviceSections, opaque.size());
    }

    private long receivedTargetPages(IncomingPostcopy p) {
        long n = 0;
        List<io.postcopy.fault.BlockStatistics> bs = p.statistics().blocks();
        for (int i = 0; i < bs.size() && local != null && i < local.length; i++) {
            n += bs.get(i).pagesReceived() * (local[i].pageSize() / TARGET_PAGE);
        }
        return n;
    }

    @Override
    public void cancel() {
        cancelled = true;
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing
        }
        // paused: no stream thread to end it; this one does (the guest paused first, the missing ranges listed)
        if (paused && state() == MigrationState.POSTCOPY_PAUSED) failed(new IOException("cancelled while paused"), false);
    }

    @Override
    public void pause() {
        if (state() != MigrationState.POSTCOPY || !guestResumed)
            throw new IllegalStateException("migration " + id + " is " + state() + (state() == MigrationState.POSTCOPY
                    ? " but has not run the guest here yet (before RUN a lost connection fails it)" : ", not POSTCOPY"));
        pauseAsked = true;
        closeQuietly();      // the stream thread finds the connection lost, and the migration pauses
    }

    /** Set by {@link #pause()}: the connection was closed here on purpose. */
    private volatile boolean pauseAsked;

    /** Whether the connection is lost and the migration waits for its source (for the preempt channel's thread). */
    boolean isPaused() {
        return paused;
    }

    @Override
    public void stateChanged(MigrationState previous, MigrationState next, String reason) {
        service.changed(this, previous, next, reason);
    }

    @Override
    public List<String> blockNames() {
        return idstrs(created);
    }

    // ---- the stream thread ----

    /**
     * The stream thread, on the listener's routing thread.
     *
     * @param buf from {@link #receiveBuffer()}, in write mode, holding the first bytes already read
     */
    public void run(ByteBuffer buf) {
        int handshake = service.settings().limits().handshakeMillis();
        service.after(handshake, () -> {
            if (local == null && !ending()) failed(new Refused("no block list within " + handshake + " ms (handshakeTimeoutMillis)"));
        });
        stream(buf);
    }

    /** Reads and decodes the stream on this connection until its end, a failure, or a pause. */
    private void stream(ByteBuffer buf) {
        bufAddr = PageBuffers.address(buf);
        try {
            channel.configureBlocking(true);
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            if (batch > TARGET_PAGE) stage = NativeMemory.allocate(batch);
            boolean prefetched = buf.position() > 0;     // the first bytes, read by the listener to route this connection
            if (wire instanceof TlsWire t && TlsWire.READ_AHEAD) t.readAhead("postcopy-tls-in-" + id);
            boolean quickAck = QuickAck.supported(channel);
            for (;;) {
                int n = prefetched ? 0 : wire.read(buf);
                prefetched = false;
                if (n > 0) lastBytesNanos = System.nanoTime();
                // ACK at once only where a guest may wait for these bytes: requested pages come on the main stream
                // in postcopy without a preempt channel, and a source without TCP_NODELAY (QEMU) holds a short
                // write until our ACK. Bulk bytes need no quick ACK: each one costs a setsockopt and an ACK packet
                // (measured: ~20 % of the receiving thread's CPU)
                if (quickAck && n > 0 && listening && postcopyChannel == null) QuickAck.now(channel);
                buf.flip();
                if (decoder == null) {
                    List<RamBlockInfo> probed = MemSizeProbe.probe(buf, n < 0);
                    if (probed == MemSizeProbe.NEED_MORE) {
                        buf.compact();
                        continue;
                    }
                    for (RamBlockInfo b : probed) probedSummary |= b.pageSize();
                    DecoderOptions o = DecoderOptions.defaults().withMaxPackageSize(maxPackage);
                    for (RamBlockInfo b : probed) {
                        if (b.pageSize() != TARGET_PAGE) {
                            // blocks with their own page size: the codec reads MEM_SIZE's page-size fields
                            o = o.withValidator(new io.postcopy.codec.BlockValidator(probed));
                            break;
                        }
                    }
                    decoder = new StreamDecoder(this, o);
                }
                boolean done = decoder.decode(buf);
                flushStage();
                buf.compact();
                if (done) break;
                if (n < 0) decoder.finish();
            }
            finishStream();
        } catch (Throwable t) {
            if (recoverable(t)) {
                pause(t);
            } else {
                failed(t, true);
            }
            if (t instanceof Error && !(t instanceof AssertionError)) throw (Error) t;
        } finally {
            if (stage != 0) NativeMemory.free(stage);
            stage = 0;
            if (fillPage != 0) NativeMemory.free(fillPage);
            fillPage = 0;
        }
    }

    /** EOF: every page must be present; clean up, answer SHUT 0. */
    private void finishStream() throws IOException {
        flushStage();
        IncomingPostcopy p = postcopy;
        PostcopyChannel pc = postcopyChannel;
        if (pc == null && listening && p != null && !p.complete() && (channelAnnounced || options.qemuPreempt())) {
            // requested pages may be on the channel the source announced (or QEMU's, accepted after this one),
            // which has not reached us yet
            long deadline = System.nanoTime() + 2_000_000_000L;
            while ((pc = postcopyChannel) == null && System.nanoTime() < deadline) {
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
        }
        if (pc != null) {
            if (listening) {
                try {
                    IncomingPostcopy ip = p;
                    String how = pc.awaitEosOrComplete(() -> ip != null && ip.complete(), POSTCOPY_CHANNEL_EOS_MILLIS);
                    LOG.debug("migration {}: postcopy-preempt channel done: {}", id, how);
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
            if (listening) missing = m;
            Optional<Throwable> f = p.failure();
            if (f.isPresent()) throw new IOException("fault thread failed: " + describe(f.get()), f.get());
            if (!complete) {
                missing = listening ? m : p.missing();
                throw new IOException("stream ended (EOF) with " + (listening ? m.totalBytes() + " bytes" : "pages")
                        + " never received");
            }
        }
        if (!listening && !guestResumed) resumeGuest(false);
        sendShut(0);
        if (listener != null) listener.ended(this);
        enter(MigrationState.COMPLETED, null);
        closeQuietly();
        LOG.info("migration {}: received {} pages + {} zero pages{}, {} discard ranges, {} requests, postcopy {} ms at {} GB/s",
                id, pages, zeroPages, pc == null ? "" : " (and " + pc.pages + " + " + pc.zeroPages + " on the postcopy-preempt channel)",
                discardRanges, requests, postcopyNanos() / 1_000_000, String.format("%.2f", progress().throughputGBps()));
    }

    // ---- postcopy recovery ----

    /** Set while the connection is lost and no resumed one has finished its handshake. */
    private volatile boolean paused;
    private volatile boolean hadPostcopyChannel;
    /** The stream's RAM section, for a resumed connection to go on in. */
    private volatile io.postcopy.codec.SectionHeader ramSection;

    /**
     * A lost connection once the guest runs here pauses the migration (QEMU's postcopy-paused) instead of failing
     * it: the guest holds pages that exist nowhere else now. Anything else (bad input, a local failure, a cancel)
     * still fails it.
     */
    private boolean recoverable(Throwable t) {
        if (cancelled || ending || !listening || !guestResumed || listener == null) return false;
        Throwable cause = asyncFailure != null ? asyncFailure : t;
        if (cause instanceof Refused) return false;
        if (cause instanceof CodecException ce) {
            return ce.kind() == CodecException.Kind.TRUNCATED && String.valueOf(ce.getMessage()).contains("end of input");
        }
        return cause instanceof IOException;
    }

    /**
     * The connection is lost: the pages staged from it are placed (they are whole), a host page partly gathered is
     * forgotten, the connections are closed and the migration waits for its source to come back. The fault thread
     * goes on: faulting guest threads stay blocked, their requests are asked again after the resume.
     */
    private void pause(Throwable t) {
        try {
            flushStage();
        } catch (RuntimeException e) {
            LOG.debug("migration {}: staged pages not placed at the pause: {}", id, e.toString());
        }
        paused = true;
        closeQuietly();
        PostcopyChannel pc = postcopyChannel;
        if (pc != null) {
            pc.close();
            pc.awaitEnded(10_000);
            postcopyChannel = null;
        }
        IncomingPostcopy p = postcopy;
        p.dropPartialPages();
        if (ramSection == null && decoder != null) ramSection = decoder.ramSection();
        asyncFailure = null;
        // a resumed source of ours opens its preempt channel again with the token; QEMU's comes to postcopy:recover
        if (announcedToken != null) listener.reannounce(announcedToken, this);
        Throwable cause = t;
        String why = pauseAsked ? "paused on the destination (pause)" : silence != null ? silence
                : cause instanceof CodecException ? "connection closed by the source" : describe(cause);
        silence = null;
        pauseAsked = false;
        enter(MigrationState.POSTCOPY_PAUSED, why + (announcedToken != null ? "; waiting for the source to resume"
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
        closeQuietly();
        return true;
    }

    /** The index of block {@code wireName} in the stream's block list, or -1. */
    private int streamBlockIndex(String wireName) {
        List<RamBlockInfo> blocks = streamBlocks;
        if (blocks != null) for (RamBlockInfo b : blocks) if (b.idstr().equals(wireName)) return b.index();
        return -1;
    }

    private volatile long lastBytesNanos = System.nanoTime();
    /** Why this side closed the connection: it stayed silent, or the postcopy-preempt channel was lost. */
    private volatile String silence;

    /**
     * Our source PINGs at least every third of the silence timeout: nothing for the whole timeout while the guest
     * runs here means the connection is lost, even with no reset or FIN. Closing it pauses the migration. QEMU
     * sources are not watched (they send nothing while throttled, and cannot resume here yet).
     */
    private void watchSilence() {
        if (state().isFinal()) return;
        long timeout = service.settings().limits().silenceMillis() * 1_000_000L;
        if (state() == MigrationState.POSTCOPY && !paused && announcedToken != null
                && System.nanoTime() - lastBytesNanos > timeout) {
            silence = "no bytes from the source for " + timeout / 1_000_000 + " ms (silenceTimeoutMillis)";
            LOG.info("migration {}: {}", id, silence);
            closeQuietly();
        }
        service.after(Math.max(25, timeout / 4_000_000), this::watchSilence);
    }

    @Override
    public InetSocketAddress recover(InetSocketAddress bind) {
        if (state() != MigrationState.POSTCOPY_PAUSED || listener == null)
            throw new io.postcopy.migration.MigrationException("migration " + id + " is " + state() + ", not POSTCOPY_PAUSED");
        return listener.recover(this, bind);
    }

    /** Whether the source opened a postcopy-preempt channel (QEMU opens it again when it resumes). */
    public boolean hadPostcopyChannel() {
        return hadPostcopyChannel;
    }

    /** Whether the source is ours (it announced a channel token), not QEMU. */
    public boolean fromOurSource() {
        return announcedToken != null;
    }

    /**
     * A QEMU source sends nothing while its bandwidth limit holds it back, so silence proves nothing there: TCP
     * keepalive probes the connection instead, and a peer that stopped answering ends it within about
     * {@code silenceTimeoutMillis} (idle a third of it, then three probes), which pauses the migration.
     */
    private void keepAlive() {
        if (announcedToken != null) return;       // ours PINGs; watchSilence hears it
        int seconds = Math.max(3, service.settings().limits().silenceMillis() / 1000);
        try {
            channel.setOption(java.net.StandardSocketOptions.SO_KEEPALIVE, true);
            channel.setOption(jdk.net.ExtendedSocketOptions.TCP_KEEPIDLE, Math.max(1, seconds / 3));
            channel.setOption(jdk.net.ExtendedSocketOptions.TCP_KEEPINTERVAL, Math.max(1, seconds / 9));
            channel.setOption(jdk.net.ExtendedSocketOptions.TCP_KEEPCOUNT, 3);
        } catch (IOException | UnsupportedOperationException e) {
            LOG.debug("migration {}: TCP keepalive not set: {}", id, e.toString());
        }
    }

    /** Whether {@code token} is this paused migration's (a resumed connection proving itself). */
    public boolean resumableWith(byte[] token) {
        return state() == MigrationState.POSTCOPY_PAUSED && tokenMatches(token, 0);
    }

    /**
     * From the listener's routing thread: the source resumes over {@code c}. The stream goes on where it was (no
     * header): RECV_BITMAP for each block, answered with what arrived; POSTCOPY_RESUME, answered with RESUME_ACK and
     * the requests of the guest threads still waiting; then the rest of the RAM section.
     */
    public void resume(SocketChannel c, java.nio.channels.ByteChannel w, String peer, ByteBuffer buf) {
        synchronized (rpLock) {
            channel = c;
            wire = w;
            // the first request on the new connection names its block (a new encoder knows none). lastRequestWire
            // stays: the fault thread names a block only when it changes, and may ask for a page of the same block
            // before its requests are sent again (seen with QEMU over TLS: a null block, the fault thread failed)
            rpEncoder = new ReturnPathEncoder();
        }
        this.peer = peer;
        lastBytesNanos = System.nanoTime();
        if (!enter(MigrationState.POSTCOPY_RECOVER, null)) return;
        decoder = StreamDecoder.forResumedStream(this, DecoderOptions.defaults().withMaxPackageSize(maxPackage), streamBlocks,
                ramSection);
        try {
            if (batch > TARGET_PAGE) stage = NativeMemory.allocate(batch);
        } catch (RuntimeException e) {
            failed(e, true);
            return;
        }
        stream(buf);
    }

    /**
     * Ends this migration: SHUT 1 if the connection still works, close it, ask the guest to pause (before any of
     * its vCPUs blocked on a missing page can wake), stop the postcopy channel's thread, clean up the fault
     * service (which waits for placements in flight, then unregisters and so wakes those vCPUs), wait for the
     * guest to pause, remove the blocks. Only then the final state: nothing of ours touches the blocks any more.
     */
    private void failed(Throwable t, boolean trySend) {
        ending = true;
        if (asyncFailure == null && listener != null && state() == MigrationState.SETUP && endOfInput(t)) {
            // QEMU closes its main stream when we refuse one of its other channels (multifd): that refusal, perhaps
            // still on its way from another thread, is the reason; a moment's wait costs a failing migration nothing
            java.net.InetAddress host = sourceHost;
            long since = startNanos - 2_000_000_000L;     // its channels may be refused before its first bytes are read
            long deadline = System.nanoTime() + 500_000_000L;
            while (asyncFailure == null && !listener.multifdRefusedFrom(host, since) && System.nanoTime() < deadline) {
                java.util.concurrent.locks.LockSupport.parkNanos(2_000_000);
            }
            if (asyncFailure == null && listener.multifdRefusedFrom(host, since)) {
                t = new Refused("the source closed its stream in SETUP after its multifd channel was refused: capability"
                        + " multifd is not supported, turn it off on the source");
            }
        }
        Throwable cause = asyncFailure != null ? asyncFailure : t;
        String reason;
        if (cancelled) {
            reason = "cancelled on the destination";
        } else if (endOfInput(cause)) {
            reason = "connection closed by the source in " + state() + ": " + cause.getMessage();
        } else if (cause instanceof AsynchronousCloseException || cause instanceof ClosedChannelException) {
            reason = "connection closed in " + state();
        } else if (cause instanceof Refused) {
            reason = cause.getMessage();
        } else if (cause instanceof IOException && !(cause instanceof CodecException)) {
            reason = "connection to the source failed in " + state() + ": " + describe(cause);
        } else {
            reason = describe(cause);
        }
        if (trySend && channel.isOpen()) {
            try {
                sendShut(1);
            } catch (IOException | RuntimeException ignored) {
                // the connection is gone
            }
        }
        closeQuietly();
        PostcopyChannel pc = postcopyChannel;
        if (pc != null) pc.close();
        boolean guestStopped = true;
        if (guestResumed) {
            joinResume();     // a resume still on its way must not come after the pause
            try {
                options.guest().requestPause();
            } catch (RuntimeException e) {
                LOG.warn("migration {}: asking the guest to pause failed", id, e);
            }
        }
        if (pc != null && !pc.awaitEnded(10_000)) LOG.warn("migration {}: the postcopy-preempt channel's thread goes on", id);
        IncomingPostcopy p = postcopy;
        if (p != null) {
            try {
                MissingPages m = p.cleanup();
                if (listening) missing = m;
                if (m.totalBytes() > 0) {
                    reason += "; " + m.totalBytes() + " bytes in " + m.ranges().size()
                            + (m.ranges().size() == 1 ? " range" : " ranges") + " never received";
                }
            } catch (RuntimeException e) {
                LOG.warn("migration {}: cleanup failed", id, e);
            }
        }
        if (guestResumed) {
            try {
                options.guest().pause();
            } catch (RuntimeException e) {
                guestStopped = false;
                LOG.warn("migration {}: pausing the guest failed; its blocks stay", id, e);
            }
        }
        if (options.removeBlocksOnFailure() && guestStopped) {
            for (RamBlock b : created) {
                try {
                    // by force: the paused guest (e.g. a workload) holds the block too, and is asked to let go
                    service.registry().remove(b.idstr(), REMOVE_WAIT);
                } catch (RuntimeException e) {
                    LOG.warn("migration {}: removing block {} failed: {}", id, b.idstr(), e.getMessage());
                }
            }
            created.clear();
        }
        if (listener != null) listener.ended(this);
        // last: whoever waits for the final state finds everything cleaned up
        enter(cancelled ? MigrationState.CANCELLED : MigrationState.FAILED, reason);
    }

    /** How long a failed migration waits for the holders of its blocks (the guest) to let go before it keeps them. */
    private static final java.time.Duration REMOVE_WAIT = java.time.Duration.ofSeconds(10);

    /** Set when the stream thread starts to end the migration. */
    private volatile boolean ending;

    /** Whether this migration is ending or has ended (for the postcopy channel's thread). */
    public boolean ending() {
        return ending || state().isFinal();
    }

    private void joinResume() {
        Thread t = resumeThread;
        if (t == null) return;
        try {
            t.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (t.isAlive()) LOG.warn("migration {}: the guest's resume has not returned after 10 s", id);
    }

    private void closeQuietly() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    // ---- the return path ----

    /** SHUT is the return path's last message: one, whichever thread ends the migration first sends it. */
    private final java.util.concurrent.atomic.AtomicBoolean shutSent = new java.util.concurrent.atomic.AtomicBoolean();

    private void sendShut(int status) throws IOException {
        if (shutSent.compareAndSet(false, true)) sendReturn(new ReturnPathMessage.Shut(status));
    }

    private void sendReturn(ReturnPathMessage m) throws IOException {
        synchronized (rpLock) {
            int len = ReturnPathEncoder.encodedLength(m);
            // a received bitmap is as long as its block is large: a buffer of its own
            ByteBuffer b = len <= rpBuf.capacity() ? rpBuf.clear() : ByteBuffer.allocateDirect(len);
            rpEncoder.write(m, b);
            b.flip();
            while (b.hasRemaining()) wire.write(b);
        }
    }

    /** From the fault thread: REQ_PAGES_ID when the block changes, else REQ_PAGES. */
    @Override
    public void requestPage(String blockIdstr, long offset, long length) throws IOException {
        if (paused) return;      // asked again after the resume (IncomingPostcopy.resendRequests)
        synchronized (rpLock) {
            if (blockIdstr != null) {
                lastRequestWire = blockIdstr.substring(options.blockPrefix().length());
            }
            rpBuf.clear();
            rpEncoder.writePageRequest(lastRequestWire, offset, (int) length, rpBuf);
            rpBuf.flip();
            try {
                while (rpBuf.hasRemaining()) wire.write(rpBuf);
            } catch (IOException e) {
                // the connection is lost: the stream thread finds out and pauses, or fails, the migration; the fault
                // thread must go on either way (its blocked guest threads need it after a resume)
                LOG.debug("migration {}: page request not sent: {}", id, e.toString());
                closeQuietly();
                return;
            }
            requests++;
        }
        if (LOG.isDebugEnabled()) LOG.debug("migration {}: request {} 0x{}", id, lastRequestWire, Long.toHexString(offset));
    }

    private static boolean endOfInput(Throwable t) {
        return t instanceof CodecException ce && ce.kind() == CodecException.Kind.TRUNCATED
                && String.valueOf(ce.getMessage()).contains("end of input");
    }

    /** Ends this migration from another thread with {@code reason} (a {@link Refused}), through the socket. */
    void refuse(String reason) {
        if (channel.isOpen()) {
            try {
                sendShut(1);   // before the socket closes under the stream thread
            } catch (IOException | RuntimeException ignored) {
                // the connection is gone
            }
        }
        failed(new Refused(reason));
    }

    /** From the fault thread: the incoming postcopy failed; end the stream thread through the socket. */
    @Override
    public void failed(Throwable cause) {
        asyncFailure = cause;
        closeQuietly();
    }

    // ---- StreamHandler ----

    @Override
    public void onRamBlockList(List<RamBlockInfo> blocks) throws IOException {
        // limits before anything is allocated for the peer: blocks, page bitmaps
        long normal = 0, huge = 0;
        for (RamBlockInfo b : blocks) {
            if (b.pageSize() == TARGET_PAGE) normal += b.usedLength();
            else huge += b.usedLength();
        }
        service.admit(this, normal, huge);
        admittedRam = normal;
        local = new RamBlock[blocks.size()];
        long total = 0;
        for (RamBlockInfo b : blocks) {
            String name = options.blockPrefix() + b.idstr();
            if (service.registry().byName(name) != null) {
                throw new Refused("RAM block \"" + name + "\" already exists here");
            }
            RamBlock.Backing backing = RamBlock.Backing.ANONYMOUS;
            if (b.pageSize() != TARGET_PAGE) {
                if (b.pageSize() != NativeMemory.hugePageSize()) {
                    throw new Refused("RAM block " + b.idstr() + " has page size " + b.pageSize()
                            + "; this host has 4096 and huge pages of " + NativeMemory.hugePageSize());
                }
                backing = RamBlock.Backing.HUGETLB;
            }
            RamBlock r = service.registry().create(name, b.usedLength(), backing);
            created.add(r);
            local[b.index()] = r;
            total += b.usedLength() / TARGET_PAGE;
        }
        totalPages = total;
        streamBlocks = List.copyOf(blocks);
        long summary = 0;
        for (RamBlock r : local) summary |= r.pageSize();
        checkSummary(summary, "the page sizes of the blocks created here");
        IncomingPostcopy p = service.faultService().create(id, List.of(local), this);
        postcopy = p;
        // precopy pages load into the blocks before userfaultfd is armed: every stream starts in ADVISE
        p.advise();
        LOG.debug("migration {}: {} blocks, {} pages", id, local.length, total);
    }

    @Override
    public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) throws IOException {
        if (!listening && state() == MigrationState.SETUP) enter(MigrationState.PRECOPY, null);
        pages++;
        if (listening) postcopyPageBytes += length;
        long addr = bufAddr + position;
        int bi = block.index();
        if (batch <= TARGET_PAGE) {
            place(bi, offset, addr, length, false);
            return;
        }
        if (stageLength > 0 && (stageZero || stageBlock != bi || stageOffset + stageLength != offset
                || stageLength + length > batch)) {
            flushStage();
        }
        if (stageLength == 0) {
            stageBlock = bi;
            stageOffset = offset;
            stageZero = false;
        }
        NativeMemory.copy(addr, stage + stageLength, length);   // our memory to our memory
        stageLength += length;
    }

    @Override
    public void onZero(RamBlockInfo block, long offset, int fill, int length) throws IOException {
        if (!listening && state() == MigrationState.SETUP) enter(MigrationState.PRECOPY, null);
        zeroPages++;
        int bi = block.index();
        if (fill != 0) {
            flushStage();
            if (fillPage == 0) fillPage = NativeMemory.allocate(TARGET_PAGE);
            NativeMemory.fill(fillPage, length, (byte) fill);
            place(bi, offset, fillPage, length, false);
            return;
        }
        if (stageLength > 0 && (!stageZero || stageBlock != bi || stageOffset + stageLength != offset
                || stageLength + length > MAX_ZERO_RUN)) {
            flushStage();
        }
        if (stageLength == 0) {
            stageBlock = bi;
            stageOffset = offset;
            stageZero = true;
        }
        stageLength += length;
    }

    private void flushStage() {
        if (stageLength == 0) return;
        long len = stageLength;
        stageLength = 0;
        place(stageBlock, stageOffset, stageZero ? 0 : stage, len, stageZero);
    }

    private void place(int bi, long offset, long src, long length, boolean zero) {
        RamBlock b = local[bi];
        IncomingPostcopy p = postcopy;
        if (listening) {
            if (zero) p.placeZeroPages(b, offset, length);
            else p.placePages(b, offset, src, length);
        } else {
            if (zero) p.loadPrecopyZero(b, offset, length);
            else p.loadPrecopyPages(b, offset, src, length);
        }
    }

    // ---- the postcopy-preempt channel ----

    /**
     * From the listener's routing thread: {@code c} is this migration's postcopy-preempt channel (it proved it
     * with our token, or came next under QEMU's rule). Returns the channel to run on that thread.
     */
    public PostcopyChannel attachPostcopyChannel(SocketChannel c, java.nio.channels.ByteChannel wire, String peer) {
        PostcopyChannel pc = new PostcopyChannel(this, c, wire, peer);
        postcopyChannel = pc;
        hadPostcopyChannel = true;
        int deeper = settings().preemptReceiveBufferSize();
        if (deeper > 0) {
            try {
                channel.setOption(java.net.StandardSocketOptions.SO_RCVBUF, deeper);   // bulk pages only from now on
            } catch (IOException e) {
                LOG.debug("migration {}: SO_RCVBUF {} refused: {}", id, deeper, e.toString());
            }
        }
        return pc;
    }

    boolean isListening() {
        return listening;
    }

    /** From the postcopy channel's thread: waits until this migration listens (LISTEN read) or has ended. */
    void awaitListeningOrEnd() {
        while (!listening && !ending()) java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
    }

    /** From the postcopy channel's thread, at its first bytes: the block list, once postcopy listens. */
    List<RamBlockInfo> postcopyChannelBlocks() throws IOException {
        if (!listening) throw new Refused("bytes on the postcopy-preempt channel before POSTCOPY_LISTEN");
        return streamBlocks;
    }

    /** From the postcopy channel's thread: a whole host page (the block list's index {@code bi}). */
    void placeFromPostcopyChannel(int bi, long offset, long src, long length, boolean zero) {
        IncomingPostcopy p = postcopy;
        if (zero) p.placeZeroPages(local[bi], offset, length);
        else p.placePages(local[bi], offset, src, length);
    }

    Settings settings() {
        return service.settings();
    }


    @Override
    public Optional<String> postcopyChannel() {
        PostcopyChannel pc = postcopyChannel;
        return pc == null ? Optional.empty() : Optional.of(pc.peer + ", " + pc.pages + " pages, " + pc.zeroPages + " zero pages");
    }

    @Override
    public void onCommand(Command c) throws IOException {
        flushStage();
        command(c, false);
    }

    private void command(Command c, boolean inPackage) throws IOException {
        if (c instanceof Command.OpenReturnPath) {
            returnPath = true;
            // QEMU's loadvm_process_command: with switchover-ack, the ACK right away when no device holds it back
            if (options.switchoverAck() && !inPackage) sendReturn(new ReturnPathMessage.SwitchoverAck());
        } else if (c instanceof Command.Ping ping) {
            LOG.debug("migration {}: PING {}", id, ping.value());
            if (returnPath) sendReturn(new ReturnPathMessage.Pong(ping.value()));
        } else if (c instanceof Command.PostcopyAdvise a) {
            if (a.withSizes()) checkAdvise(a);
            advised = true;
        } else if (c instanceof Command.PostcopyRamDiscard d) {
            IncomingPostcopy p = requireBlocks(c);
            String name = options.blockPrefix() + d.block();
            for (DiscardRange r : d.ranges()) {
                p.discard(name, r.start(), r.length());
                discardRanges++;
            }
        } else if (c instanceof Command.PostcopyListen) {
            IncomingPostcopy p = requireBlocks(c);
            if (!advised) throw new Refused("POSTCOPY_LISTEN without POSTCOPY_ADVISE");
            p.listen();
            listening = true;
            enter(MigrationState.POSTCOPY, null);
        } else if (c instanceof Command.PostcopyRun) {
            IncomingPostcopy p = requireBlocks(c);
            if (!listening) throw new Refused("POSTCOPY_RUN before POSTCOPY_LISTEN");
            p.run();
            running = true;
            resumeGuest(true);
            lastBytesNanos = System.nanoTime();
            watchSilence();
            keepAlive();
            Urgent.bulk(settings(), "stream thread of " + id);   // the guest runs: its faults come first
        } else if (c instanceof Command.ChannelToken t) {
            // our source's extra channel will present this; QEMU never sends it
            if (inPackage || listener == null) throw new Refused("CHANNEL_TOKEN " + (inPackage ? "in a package" : "on a lone connection"));
            listener.announce(t.token(), this);
            announcedToken = t.token();
            channelAnnounced = true;
        } else if (c instanceof Command.PeerId p) {
            // only our source sends it: the answer cannot reach a QEMU source
            if (inPackage) throw new Refused("PEER_ID in a package");
            peerId = p.id();
            if (returnPath) sendReturn(new ReturnPathMessage.PeerId(id));
        } else if (c instanceof Command.RecvBitmap rb && state() == MigrationState.POSTCOPY_RECOVER && !inPackage) {
            String name = options.blockPrefix() + rb.block();
            if (service.registry().byName(name) == null || streamBlockIndex(rb.block()) < 0)
                throw new Refused("RECV_BITMAP for block " + rb.block() + ", not one of this migration's");
            sendReturn(new ReturnPathMessage.RecvBitmap(rb.block(), postcopy.receivedBitmap(name)));
        } else if (c instanceof Command.PostcopyResume && state() == MigrationState.POSTCOPY_RECOVER && !inPackage) {
            sendReturn(new ReturnPathMessage.ResumeAck(1));
            paused = false;
            enter(MigrationState.POSTCOPY, null);
            int again = postcopy.resendRequests();
            LOG.info("migration {}: resumed from {}; {} page requests sent again", id, peer, again);
        } else if (c instanceof Command.SwitchoverStart) {
            // QEMU 10.0+: its guest stopped, the switchover begins (before the discards and the package of
            // postcopy_start, or before the last precopy sections). Only devices that prepare early care; we have none.
            if (inPackage) throw new Refused("SWITCHOVER_START (command 11) inside the package; QEMU sends it before the package");
            if (running) throw new Refused("SWITCHOVER_START (command 11) after POSTCOPY_RUN: the switchover already happened");
            if (switchoverStarted) throw new Refused("a second SWITCHOVER_START (command 11)");
            switchoverStarted = true;
            LOG.debug("migration {}: SWITCHOVER_START", id);
        } else if (c instanceof Command.Packaged) {
            if (inPackage) throw new Refused("nested PACKAGED");
            // the blob follows: onPackage
        } else {
            throw new Refused("unsupported command " + c.type() + " (command " + c.type().number() + ")"
                    + (c instanceof Command.EnableColo ? ": COLO is not supported, turn x-colo off on the source"
                    : c instanceof Command.RecvBitmap || c instanceof Command.PostcopyResume ? " outside a postcopy recovery (state " + state() + ")" : ""));
        }
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

    private void checkSummary(long local, String what) throws Refused {
        if (advisedSummary != 0 && advisedSummary != local) {
            throw new Refused("POSTCOPY_ADVISE: the source's RAM page-size summary is 0x" + Long.toHexString(advisedSummary)
                    + ", ours is 0x" + Long.toHexString(local) + " (" + what + "): postcopy needs matching RAM page sizes");
        }
    }

    private IncomingPostcopy requireBlocks(Command c) throws IOException {
        IncomingPostcopy p = postcopy;
        if (p == null) throw new Refused(c.type() + " before the RAM block list");
        return p;
    }

    /** The guest may run here now; from another thread, since it may fault on pages this thread places. */
    private void resumeGuest(boolean async) {
        guestResumed = true;
        if (!async) {
            options.guest().resume();
            return;
        }
        Thread t = new Thread(() -> {
            try {
                options.guest().resume();
            } catch (RuntimeException e) {
                LOG.warn("migration {}: resuming the guest failed", id, e);
            }
        }, "postcopy-resume-" + id);
        t.setDaemon(true);
        resumeThread = t;
        t.start();
    }

    @Override
    public void onPackage(PackageContents pkg) throws IOException {
        long cap = (long) service.settings().limits().maxDeviceStateMiB() << 20;
        for (DeviceSection s : pkg.sections()) deviceStateBytes += s.length();
        if (deviceStateBytes > cap) {
            throw new Refused("device state: " + deviceStateBytes + " bytes in all, more than maxDeviceStateMiB "
                    + (cap >> 20) + " MiB");
        }
        for (Command c : pkg.leadingCommands()) command(c, true);
        for (DeviceSection s : pkg.sections()) {
            DeviceStateHandler h = service.handler(s.idstr(), s.instanceId());
            if (h == null) {
                opaque.add(new OpaqueSection(s.idstr(), s.instanceId(), s.versionId(), DeviceStates.sectionBytes(pkg, s)));
                LOG.debug("migration {}: device section {}/{} kept opaque ({} bytes)", id, s.idstr(), s.instanceId(), s.length());
            } else {
                DeviceStates.load(pkg, s, h);
                deviceSections++;
            }
        }
        for (Command c : pkg.trailingCommands()) command(c, true);
    }

    @Override
    public void onEof() {
        flushStage();
        eof = true;
    }

}
