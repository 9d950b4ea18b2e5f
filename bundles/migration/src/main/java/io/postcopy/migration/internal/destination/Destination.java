package io.postcopy.migration.internal.destination;

import io.postcopy.codec.RamBlockInfo;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.MissingPages;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.MigrationException;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.AbstractMigration;
import io.postcopy.migration.internal.MigrationServiceImpl;
import io.postcopy.migration.internal.Refused;
import io.postcopy.migration.internal.Settings;
import io.postcopy.ramblock.RamBlock;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.security.MessageDigest;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.LockSupport;

/**
 * The destination of one incoming migration (the seed's {@code qemu_loadvm_state} + {@code ram_load_postcopy} +
 * {@code loadvm_postcopy_handle_*}): its {@link IncomingMigration}, the entry points of the listener that routed its
 * connections, and the state its parts share. The work is in the parts: {@link StreamReader} (the read loop, the
 * block list), {@link PageLoader} (staging and placement), {@link Commands}, {@link ReturnPathWriter}, {@link Recovery}
 * (pause and resume), {@link End} (completion and failure, reported by {@link EndReport}) and {@link PreemptReceiver}.
 *
 * <p>Threads. The <em>stream thread</em> (the listener's routing thread, {@code postcopy-in-<id>}; after a pause the one
 * that resumes it) runs the reader, the commands, the main stream's page loader and the end, and writes the shared
 * fields below unless a field says otherwise. The <em>fault thread</em> writes page requests and reports its failure
 * ({@link #failAsync}). The <em>preempt channel's thread</em> places requested pages with a page loader of its own.
 * The listener's routing threads attach that channel and resume a paused migration; the service's deadline thread ends
 * a silent handshake and watches for silence; API callers come from any thread. Whatever another thread reads is
 * volatile (or a copy-on-write list); each field has one writer at a time.
 */
public final class Destination extends AbstractMigration implements IncomingMigration {
    private static final int RECEIVE_BUFFER = 1 << 20;

    final IncomingOptions options;
    /** The listener that routed this connection here; null: a lone connection (no extra channels). */
    final RoutingListener listener;
    /** The TCP connection: socket options, close. A resumed migration gets a new one ({@link ReturnPathWriter#resumeOn}). */
    volatile SocketChannel channel;
    /** Its bytes: the connection itself, or TLS over it. */
    volatile ByteChannel wire;

    final ReturnPathWriter returnPath;
    final Commands commands;
    final Recovery recovery;
    final End end;
    final StreamReader reader;

    /** The blocks by the stream's block index; written once, before {@link #postcopy} publishes them. */
    RamBlock[] local;
    final List<RamBlock> created = new CopyOnWriteArrayList<>();
    volatile IncomingPostcopy postcopy;
    /** The stream's block list (MEM_SIZE), for the postcopy channel and a resumed stream. */
    volatile List<RamBlockInfo> streamBlocks;
    /** The 4 KiB-page RAM this migration was admitted with (service limits); the target pages of all blocks. */
    volatile long admittedRam, totalPages;
    /** From LISTEN on, pages are placed with UFFDIO_COPY; read by the postcopy channel's thread too. */
    volatile boolean listening;
    volatile boolean guestResumed;
    /** Set by {@link #cancel()}, from any thread. */
    volatile boolean cancelled;
    /** Set when a thread starts to end the migration ({@link End#fail}: the stream thread, or a cancel while paused). */
    volatile boolean ending;
    /** Set while the connection is lost and no resumed one has finished its handshake. */
    volatile boolean paused;
    /** A failure told by another thread (fault thread, deadline, refusal): the reason once the stream thread ends. */
    volatile Throwable asyncFailure;
    volatile MissingPages missing;
    final List<OpaqueSection> opaque = new CopyOnWriteArrayList<>();
    /** CHANNEL_TOKEN, set once: only our source sends it. */
    volatile byte[] announcedToken;
    /** The postcopy-preempt channel of this migration: set by the routing thread that attaches it, cleared at a pause. */
    volatile PreemptReceiver preempt;
    volatile boolean hadPostcopyChannel;

    public Destination(String id, MigrationServiceImpl service, SocketChannel channel, ByteChannel wire,
                       IncomingOptions options, RoutingListener listener) {
        super(id, service);
        this.channel = channel;
        this.wire = wire;
        this.options = options;
        this.listener = listener;
        InetAddress sourceHost = null;
        try {
            this.peer = channel.getRemoteAddress().toString();
            sourceHost = ((InetSocketAddress) channel.getRemoteAddress()).getAddress();
        } catch (IOException e) {
            this.peer = "?";
        }
        Settings s = service.settings();
        returnPath = new ReturnPathWriter(this);
        commands = new Commands(this);
        recovery = new Recovery(this);
        end = new End(this, sourceHost);
        reader = new StreamReader(this, options.stagingBatchSize() > 0 ? options.stagingBatchSize() : s.stagingBatchSize(),
                options.maxPackageSize() > 0 ? options.maxPackageSize() : s.maxPackageSize());
    }

    /** A receive buffer: direct, so that pages go from it to the blocks by address. */
    public static ByteBuffer receiveBuffer() {
        return ByteBuffer.allocateDirect(Math.max(RECEIVE_BUFFER, io.postcopy.codec.StreamDecoder.MIN_BUFFER_CAPACITY));
    }

    // ---- IncomingMigration, from any thread ----

    @Override public List<RamBlock> blocks() { return List.copyOf(created); }

    @Override public Optional<MissingPages> missing() { return Optional.ofNullable(missing); }

    @Override public List<OpaqueSection> opaqueSections() { return List.copyOf(opaque); }

    @Override
    public Optional<FaultStatistics> statistics() {
        IncomingPostcopy p = postcopy;
        return p == null ? Optional.empty() : Optional.of(p.statistics());
    }

    @Override
    public MigrationProgress progress() {
        long total = totalPages;
        long remaining = total;
        IncomingPostcopy p = postcopy;
        if (p != null && state() != MigrationState.COMPLETED) {
            remaining = Math.max(0, total - receivedTargetPages(p));
        } else if (state() == MigrationState.COMPLETED) {
            remaining = 0;
        }
        PreemptReceiver pc = preempt;
        long chPages = pc == null ? 0 : pc.pages, chZero = pc == null ? 0 : pc.zeroPages;
        long pages = reader.pages + chPages;
        long bytes = reader.postcopyPageBytes + chPages * TARGET_PAGE;
        return new MigrationProgress(reader.offset(), pages, reader.zeroPages + chZero, total, remaining, 0, 0,
                commands.discardRanges(), returnPath.requests(), 0, bytes, postcopyNanos(), throughput(bytes, pages * TARGET_PAGE),
                commands.deviceSections(), opaque.size());
    }

    @Override
    public Optional<String> postcopyChannel() {
        PreemptReceiver pc = preempt;
        return pc == null ? Optional.empty() : Optional.of(pc.peer() + ", " + pc.pages + " pages, " + pc.zeroPages + " zero pages");
    }

    @Override
    public void cancel() {
        cancelled = true;
        closeQuietly();
        // paused: no stream thread to end it; this one does (the guest paused first, the missing ranges listed)
        if (paused && state() == MigrationState.POSTCOPY_PAUSED) end.fail(new IOException("cancelled while paused"), false);
    }

    @Override
    public void pause() {
        if (state() != MigrationState.POSTCOPY || !guestResumed)
            throw new IllegalStateException("migration " + id() + " is " + state() + (state() == MigrationState.POSTCOPY
                    ? " but has not run the guest here yet (before RUN a lost connection fails it)" : ", not POSTCOPY"));
        recovery.pauseAsked();
    }

    @Override
    public InetSocketAddress recover(InetSocketAddress bind) {
        if (state() != MigrationState.POSTCOPY_PAUSED || listener == null)
            throw new MigrationException("migration " + id() + " is " + state() + ", not POSTCOPY_PAUSED");
        return listener.recover(this, bind);
    }

    @Override public List<String> blockNames() { return idstrs(created); }

    // ---- the listener's routing threads and the service ----

    /**
     * The stream thread, on the listener's routing thread.
     *
     * @param buf from {@link #receiveBuffer()}, in write mode, holding the first bytes already read
     */
    public void run(ByteBuffer buf) {
        int handshake = service.settings().limits().handshakeMillis();
        service.after(handshake, () -> {
            if (local == null && !ending()) failAsync(new Refused("no block list within " + handshake + " ms (handshakeTimeoutMillis)"));
        });
        reader.stream(buf);
    }

    /**
     * The source resumes over {@code c}, on the routing thread that becomes the stream thread again. The stream goes on
     * where it was (no header): RECV_BITMAP for each block, answered with what arrived; POSTCOPY_RESUME, answered with
     * RESUME_ACK and the requests of the guest threads still waiting; then the rest of the RAM section.
     */
    public void resume(SocketChannel c, ByteChannel w, String peer, ByteBuffer buf) {
        returnPath.resumeOn(c, w);
        this.peer = peer;
        recovery.heard();
        if (!enter(MigrationState.POSTCOPY_RECOVER, null)) return;
        reader.resume(buf, recovery.ramSection());
    }

    /**
     * {@code c} is this migration's postcopy-preempt channel (it proved it with our token, or came next under QEMU's
     * rule). Returns the channel to run on that routing thread.
     */
    public PreemptReceiver attachPostcopyChannel(SocketChannel c, ByteChannel wire, String peer) {
        PreemptReceiver pc = new PreemptReceiver(this, c, wire, peer);
        preempt = pc;
        hadPostcopyChannel = true;
        pc.deepenMainReceiveBuffer();
        return pc;
    }

    /**
     * From a channel's thread (QEMU's rule put it here, yet it shows our magic): whether {@code token} is the one this
     * migration announced, waiting for the announcement up to {@code deadline}.
     */
    public boolean tokenMatches(byte[] token, long deadline) {
        while (announcedToken == null && !ending() && System.nanoTime() < deadline) LockSupport.parkNanos(1_000_000);
        byte[] mine = announcedToken;
        return mine != null && MessageDigest.isEqual(mine, token);
    }

    /** Whether {@code token} is this paused migration's (a resumed connection proving itself). */
    public boolean resumableWith(byte[] token) {
        return state() == MigrationState.POSTCOPY_PAUSED && tokenMatches(token, 0);
    }

    /** Whether the source is ours (it announced a channel token), not QEMU. */
    public boolean fromOurSource() { return announcedToken != null; }

    /** Whether the source opened a postcopy-preempt channel (QEMU opens it again when it resumes). */
    public boolean hadPostcopyChannel() { return hadPostcopyChannel; }

    /** RAM this live migration may still need: admitted, less what has arrived (the service's admission). */
    public long outstandingRam() {
        IncomingPostcopy p = postcopy;
        long received = p == null || local == null ? 0 : receivedTargetPages(p) * TARGET_PAGE;
        return Math.max(0, admittedRam - received);
    }

    /** Ends this migration from another thread with {@code reason} (a {@link Refused}), through the socket. */
    public void refuse(String reason) {
        if (channel.isOpen()) {
            try {
                returnPath.sendShut(1);   // before the socket closes under the stream thread
            } catch (IOException | RuntimeException ignored) {
                // the connection is gone
            }
        }
        failAsync(new Refused(reason));
    }

    /** Whether this migration is ending or has ended. */
    public boolean ending() { return ending || state().isFinal(); }

    // ---- the postcopy channel's thread ----

    public boolean isListening() { return listening; }

    /** Whether the connection is lost and the migration waits for its source. */
    public boolean isPaused() { return paused; }

    /** Waits until this migration listens (LISTEN read) or has ended. */
    public void awaitListeningOrEnd() {
        while (!listening && !ending()) LockSupport.parkNanos(1_000_000);
    }

    /**
     * The channel's connection was lost (reset, aborted) while the main one seems not to be; false when this migration
     * cannot pause ({@link Recovery#channelLost}).
     */
    public boolean channelLost(Throwable t, String channelPeer) {
        return recovery.channelLost(t, channelPeer);
    }

    public Settings settings() { return service.settings(); }

    // ---- for the parts ----

    /** From another thread (the fault thread, a deadline, a refusal): fail with {@code cause}; the stream thread ends it. */
    void failAsync(Throwable cause) {
        asyncFailure = cause;
        closeQuietly();
    }

    void closeQuietly() {
        closeQuietly(channel);
    }

    static void closeQuietly(java.nio.channels.Channel c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    /** PEER_ID: the source's id for this migration. */
    void setPeerId(String id) { peerId = id; }

    private long receivedTargetPages(IncomingPostcopy p) {
        long n = 0;
        List<io.postcopy.fault.BlockStatistics> bs = p.statistics().blocks();
        for (int i = 0; i < bs.size() && local != null && i < local.length; i++) {
            n += bs.get(i).pagesReceived() * (local[i].pageSize() / TARGET_PAGE);
        }
        return n;
    }
}
