package io.postcopy.migration.internal;

import io.postcopy.codec.BlockValidator;
import io.postcopy.codec.CodecException;
import io.postcopy.codec.Command;
import io.postcopy.codec.DiscardBatcher;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.codec.Wire;
import io.postcopy.migration.DeviceStateHandler;
import io.postcopy.migration.MigrationMode;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.migration.OutgoingOptions;
import io.postcopy.ramblock.PageBitmap;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.DirtyTracker;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The source: the seed's {@code migration_thread} + {@code ram_save_*} + {@code source_return_path_thread}.
 *
 * <p>Per block, {@code sent} holds the block pages whose current content the destination has (sent, and
 * not written since); {@code stale} the pages the destination holds an outdated copy of (sent, then
 * dirtied). A dirty scan moves pages from sent to stale; sending a page sets sent and clears stale. At the
 * switch the stale pages become discards, and postcopy sends exactly the pages not in {@code sent}: a page
 * goes twice only if it was dirtied before the switch.
 *
 * <p>Threads: the sender (everything on the main stream; it runs {@link #run}) and the return-path reader
 * (requests, PONG, SHUT). Without a preempt channel the reader only enqueues requests; with one it claims the
 * requested page in {@code sent} and writes it on that channel itself, under {@link #preemptLock}.
 *
 * <p>Lifetime: the blocks are leased from {@link #resolveBlocks} until both threads have ended. Only the sender
 * enters a final state, and only after it has joined the reader, closed the trackers and let go of the blocks:
 * whoever sees COMPLETED, FAILED or CANCELLED may remove them. {@link #cancel} and a failing reader only ask.
 */
final class Outgoing extends AbstractMigration implements OutgoingMigration {
    private static final java.security.SecureRandom RANDOM = new java.security.SecureRandom();
    /** Records per PART section (QEMU bounds a section by time; any bound works for the receiver). */
    private static final int RECORDS_PER_SECTION = 4096;
    /** PRECOPY_ONLY stops iterating when no more than this many pages are dirty. */
    private static final long SMALL_DIRTY_SET = 256;

    private final MigrationServiceImpl service;
    private final InetSocketAddress target;
    private final OutgoingOptions options;
    private final List<DeviceStateHandler> handlers;

    private List<RamBlock> blocks;
    private RamBlockInfo[] infos;
    private PageBitmap[] sent, stale;
    /** Pages sent on the preempt channel (first sends and pages requested while in flight on the main stream). */
    private PageBitmap[] onChannel;
    private volatile long resentRequests;
    private int[] shift;
    private DirtyTracker[] trackers;

    private volatile SocketChannel channel;
    private StreamEncoder enc;
    /** QEMU's postcopy-preempt channel: requested pages, written by the return-path reader under {@link #preemptLock}. */
    private volatile SocketChannel preemptChannel;
    /** QEMU's PING after the package: its PONG means the destination has read RUN. */
    private static final int POST_PACKAGE_PING = 4;
    private volatile long pausedAtNanos, downtimeNanos = -1;
    /** Our PING after the block list in pure postcopy (QEMU uses 1..4 around the switch; any value is valid). */
    private static final int READY_PING = 5;
    private static final long READY_WAIT_NANOS = 2_000_000_000L;
    private final CountDownLatch readyPong = new CountDownLatch(1);
    /** The PONG to the setup's PING 1: the destination has read the header and answers on the return path. */
    private final CountDownLatch firstPong = new CountDownLatch(1);
    private StreamEncoder preemptEnc;
    /** The preempt channel's proof: random, per migration, sent only to the destination we connect to. */
    private final byte[] channelToken = new byte[Wire.CHANNEL_TOKEN_BYTES];
    private final Object preemptLock = new Object();
    private boolean preemptClosed;
    private volatile long preemptPages, preemptZeroPages;
    /** The last page the postcopy channel sent (block << 48 | page), for the sender's locality; -1: none. */
    private volatile long lastRequested = -1;
    private boolean partOpen;
    private int partRecords;

    private final ConcurrentLinkedQueue<Long> requestQueue = new ConcurrentLinkedQueue<>();
    private volatile boolean switchRequested, cancelled, paused, packageSent;
    private volatile CountDownLatch returnPathEnd = new CountDownLatch(1);
    private volatile Integer shutStatus;

    // counters (single writer each: the sender, or the reader for requests)
    private volatile long pages, zeroPages, totalPages, unsentPages, dirtyPages, discardRanges, requests, requestedPages,
            requestsSkipped, postcopyPageBytes, pongs;
    private volatile int iterations, deviceSections;

    /** TLS for both connections, or null. */
    private final Tls tls;
    /** The main connection's bytes: the connection, or TLS over it (the sender writes, the reader reads). */
    private volatile java.nio.channels.ByteChannel mainIo;

    Outgoing(String id, MigrationServiceImpl service, InetSocketAddress target, OutgoingOptions options,
             List<DeviceStateHandler> handlers, Tls tls) {
        super(id);
        this.tls = tls;
        this.service = service;
        this.target = target;
        this.options = options;
        this.handlers = handlers;
        this.peer = target.getHostString() + ":" + target.getPort();
    }

    @Override public OutgoingOptions options() { return options; }

    @Override
    public java.util.Optional<java.time.Duration> downtime() {
        long d = downtimeNanos;
        return d < 0 ? java.util.Optional.empty() : java.util.Optional.of(java.time.Duration.ofNanos(d));
    }

    /** The destination's guest can run: the first call after the package ends the downtime. */
    private void endDowntime() {
        if (packageSent && downtimeNanos < 0) downtimeNanos = System.nanoTime() - pausedAtNanos;
    }

    @Override
    public void startPostcopy() {
        switchRequested = true;
    }

    /** Asks the sender to end: the channels close under both threads, and the sender reports CANCELLED. */
    @Override
    public void cancel() {
        if (state().isFinal()) return;
        cancelled = true;
        closeChannel();
        synchronized (resumeLock) {
            resumeLock.notifyAll();
        }
    }

    // ---- postcopy recovery: the source's side ----

    private volatile Thread reader;
    private final Object resumeLock = new Object();
    private InetSocketAddress resumeTarget;    // guarded by resumeLock
    /** The received bitmaps a resumed destination sends, by block; and its RESUME_ACK. */
    private final java.util.Map<String, ByteBuffer> recvBitmaps = new java.util.concurrent.ConcurrentHashMap<>();
    private volatile CountDownLatch resumeAck = new CountDownLatch(1);
    /** Set when the return path carried something malformed: no pause for that, a failure. */
    private volatile boolean returnPathMalformed;
    /** Bytes written on connections before the current one. */
    private volatile long bytesBefore;
    private static final long RESUME_WAIT_NANOS = 30_000_000_000L;

    @Override
    public void pause() {
        if (state() != MigrationState.POSTCOPY)
            throw new IllegalStateException("migration " + id + " is " + state() + ", not POSTCOPY");
        closeChannel();      // the sender and the reader find the connection lost, and the migration pauses
    }

    @Override
    public void resume(InetSocketAddress to) {
        if (state() != MigrationState.POSTCOPY_PAUSED)
            throw new IllegalStateException("migration " + id + " is " + state() + ", not POSTCOPY_PAUSED");
        synchronized (resumeLock) {
            resumeTarget = to;
            resumeLock.notifyAll();
        }
    }

    /** A lost connection in postcopy pauses: the destination runs the guest, and only we hold its missing pages. */
    private boolean pausable() {
        return !cancelled && packageSent && !returnPathMalformed
                && (state() == MigrationState.POSTCOPY || state() == MigrationState.POSTCOPY_RECOVER);
    }

    /**
     * QEMU's postcopy_pause: the connections are closed, the guest stays paused, the blocks stay leased and the
     * bitmaps as they are; each resume request is tried until one's handshake succeeds (or the migration is
     * cancelled, which throws).
     */
    private void pauseUntilResumed(IOException lost) throws IOException {
        String why = readerFailure != null ? readerFailure : describeSource(lost);
        closeChannel();
        joinQuietly(reader);
        enter(MigrationState.POSTCOPY_PAUSED, why + destinationGuest() + "; waiting for resume");
        for (;;) {
            InetSocketAddress to;
            synchronized (resumeLock) {
                while (resumeTarget == null && !cancelled) {
                    try {
                        resumeLock.wait(100);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException("interrupted while paused");
                    }
                }
                to = resumeTarget;
                resumeTarget = null;
            }
            if (cancelled) throw new IOException("cancelled");
            try {
                handshake(to);
                return;
            } catch (IOException e) {
                String reason = readerFailure != null ? readerFailure : describe(e);
                closeChannel();
                joinQuietly(reader);
                if (cancelled) throw new IOException("cancelled");
                // a malformed answer to the resume (a bitmap of the wrong size or ending, an unknown block, a message
                // out of turn) ends this attempt, not the migration: the guest's missing pages exist only here
                returnPathMalformed = false;
                enter(MigrationState.POSTCOPY_PAUSED, "resume to " + to + " failed: " + reason + "; still paused");
            }
        }
    }

    /**
     * For the reason of a pause: whether the destination had run the guest when it was lost. A migration pauses
     * only once POSTCOPY_RUN is sent ({@link #pausable()}); the PONG to the PING that follows it says that the
     * destination read RUN and resumed its guest, so this side's guest must not run again either way.
     */
    private String destinationGuest() {
        return downtimeNanos >= 0 ? "; the destination was running the guest"
                : "; POSTCOPY_RUN was sent but not acknowledged: the destination may be running the guest";
    }

    /**
     * The resumed connection: our magic and the migration's token; RECV_BITMAP per block, and what the destination
     * lacks is sent again; the preempt channel again; POSTCOPY_RESUME, and on its RESUME_ACK postcopy goes on.
     */
    private void handshake(InetSocketAddress to) throws IOException {
        enter(MigrationState.POSTCOPY_RECOVER, null);
        readerFailure = null;
        lastHeardNanos = lastPingNanos = System.nanoTime();
        recvBitmaps.clear();
        resumeAck = new CountDownLatch(1);
        returnPathEnd = new CountDownLatch(1);
        shutStatus = null;
        SocketChannel c = SocketChannel.open();
        channel = c;
        c.setOption(StandardSocketOptions.TCP_NODELAY, true);
        int sndbuf = options.sendBufferSize() > 0 ? options.sendBufferSize() : service.settings().sendBufferSize();
        if (sndbuf > 0) c.setOption(StandardSocketOptions.SO_SNDBUF, sndbuf);
        c.connect(to);
        peer = to.getHostString() + ":" + to.getPort();    // as the operator wrote it (no resolver's "/")
        java.nio.channels.ByteChannel io = secure(c);
        ByteBuffer hello = ByteBuffer.allocate(4 + Wire.CHANNEL_TOKEN_BYTES).putInt(Wire.RESUME_MAGIC).put(channelToken).flip();
        while (hello.hasRemaining()) io.write(hello);
        mainIo = io;
        bytesBefore += enc.position();
        enc = new StreamEncoder(io, Math.max(sndbuf > 0 ? sndbuf : 256 * 1024, 72 * 1024), Wire.DEFAULT_TARGET_PAGE_SIZE);
        partOpen = false;
        requestQueue.clear();
        lastRequestBlock = -1;
        startReader();
        for (RamBlockInfo i : infos) enc.writeCommand(new Command.RecvBitmap(i.idstr()));
        enc.flush();
        long until = System.nanoTime() + RESUME_WAIT_NANOS;
        while (recvBitmaps.size() < infos.length) {
            if (returnPathEnd.getCount() == 0) throw new IOException("return path ended during the resume");
            if (System.nanoTime() - until > 0) throw new IOException("no received bitmap for every block within 30 s");
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
        long unsent = 0;
        for (int bi = 0; bi < infos.length; bi++) {
            int ratio = 1 << (shift[bi] - TARGET_SHIFT);
            sent[bi].retainReceived(recvBitmaps.get(infos[bi].idstr()), ratio);
            onChannel[bi].clearAll();
            unsent += (sent[bi].size() - sent[bi].cardinality()) * ratio;
        }
        unsentPages = unsent;
        if (options.postcopyPreempt()) openPreemptChannel(to);   // before RESUME: requests come right after the ACK
        enc.writeCommand(new Command.PostcopyResume());
        enc.flush();
        try {
            if (!resumeAck.await(RESUME_WAIT_NANOS, TimeUnit.NANOSECONDS)) throw new IOException("no RESUME_ACK within 30 s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for RESUME_ACK");
        }
        if (returnPathEnd.getCount() == 0 && readerFailure != null) throw new IOException(readerFailure);
        LOG.info("migration {}: resumed to {}; {} pages to send", id, peer, unsent);
    }

    /** The postcopy-preempt channel: its own connection (and TLS session), our magic and the token first. */
    private void openPreemptChannel(InetSocketAddress to) throws IOException {
        SocketChannel pc = SocketChannel.open();
        pc.setOption(StandardSocketOptions.TCP_NODELAY, true);
        pc.connect(to);
        java.nio.channels.ByteChannel pio = secure(pc);      // its own TLS session, as QEMU's
        // the channel proves which migration it belongs to: a secret only this source knows, announced on the
        // main stream (CHANNEL_TOKEN); until then it is silent, as QEMU's
        ByteBuffer hello = ByteBuffer.allocate(4 + Wire.CHANNEL_TOKEN_BYTES).putInt(Wire.CHANNEL_MAGIC).put(channelToken);
        hello.flip();
        while (hello.hasRemaining()) pio.write(hello);
        long largest = TARGET_PAGE;
        for (RamBlockInfo i : infos) largest = Math.max(largest, i.pageSize());
        synchronized (preemptLock) {
            preemptChannel = pc;
            preemptEnc = new StreamEncoder(pio, (int) Math.max(72 * 1024, largest + 64 * 1024), Wire.DEFAULT_TARGET_PAGE_SIZE);
        }
    }

    private void startReader() {
        Thread t = new Thread(this::returnPath, "postcopy-rp-" + id);
        t.setDaemon(true);
        reader = t;
        t.start();
    }

    /** The first failure the return-path reader saw; the sender reports it once both threads have ended. */
    private volatile String readerFailure;

    private void readerFailed(String reason) {
        if (readerFailure == null) readerFailure = reason;
        closeChannel();
    }

    private final List<io.postcopy.ramblock.RamBlockLease> leases = new ArrayList<>();

    private void releaseLeases() {
        for (io.postcopy.ramblock.RamBlockLease l : leases) l.close();
        leases.clear();
    }

    private void closeChannel() {
        for (SocketChannel c : new SocketChannel[] {channel, preemptChannel}) {
            if (c != null) {
                try {
                    c.close();
                } catch (IOException ignored) {
                    // closing
                }
            }
        }
    }

    @Override
    public MigrationProgress progress() {
        SocketChannel c = channel;
        StreamEncoder e = enc;
        long bytes = bytesBefore + (e == null ? 0 : e.position());
        StreamEncoder pe = preemptEnc;
        if (pe != null) bytes += pe.position();
        long pp = preemptPages, pz = preemptZeroPages;
        long p = pages + pp, postcopyBytes = postcopyPageBytes + pp * TARGET_PAGE;
        return new MigrationProgress(bytes, p, zeroPages + pz, totalPages, unsentPages - pp - pz, iterations, dirtyPages,
                discardRanges, requests, requestedPages, postcopyBytes, postcopyNanos(),
                throughput(postcopyBytes, p * TARGET_PAGE), deviceSections, 0);
    }

    /** Selects the blocks; called before the thread starts so that bad names fail {@code migrate} itself. */
    void resolveBlocks() {
        List<RamBlock> l = new ArrayList<>();
        if (options.blocks().isEmpty()) {
            l.addAll(service.registry().blocks());
        } else {
            for (String n : options.blocks()) {
                RamBlock b = service.registry().byName(n);
                if (b == null) throw new io.postcopy.migration.MigrationException("no RAM block named \"" + n + "\"");
                l.add(b);
            }
        }
        if (l.isEmpty()) throw new io.postcopy.migration.MigrationException("no RAM blocks to migrate");
        try {
            for (RamBlock b : l) leases.add(b.lease("migration " + id, this::cancel));
        } catch (IllegalStateException e) {
            releaseLeases();
            throw new io.postcopy.migration.MigrationException(e.getMessage());
        }
        blocks = List.copyOf(l);
        int n = blocks.size();
        infos = new RamBlockInfo[n];
        sent = new PageBitmap[n];
        stale = new PageBitmap[n];
        onChannel = new PageBitmap[n];
        shift = new int[n];
        long total = 0;
        for (int i = 0; i < n; i++) {
            RamBlock b = blocks.get(i);
            infos[i] = new RamBlockInfo(i, b.idstr(), b.usedLength(), b.pageSize());
            sent[i] = new PageBitmap(b.pages());
            stale[i] = new PageBitmap(b.pages());
            onChannel[i] = new PageBitmap(b.pages());
            shift[i] = Long.numberOfTrailingZeros(b.pageSize());
            total += b.usedLength() >>> TARGET_SHIFT;
        }
        totalPages = total;
        unsentPages = total;
    }

    void run() {
        boolean completed = false;
        String failure = null;
        Error fatal = null;
        try {
            SocketChannel c = SocketChannel.open();
            channel = c;
            if (cancelled) throw new IOException("cancelled");
            c.setOption(StandardSocketOptions.TCP_NODELAY, true);
            int sndbuf = options.sendBufferSize() > 0 ? options.sendBufferSize() : service.settings().sendBufferSize();
            if (sndbuf > 0) c.setOption(StandardSocketOptions.SO_SNDBUF, sndbuf);
            c.connect(target);
            java.nio.channels.ByteChannel io = secure(c);
            mainIo = io;
            enc = new StreamEncoder(io, Math.max(sndbuf > 0 ? sndbuf : 256 * 1024, 72 * 1024), Wire.DEFAULT_TARGET_PAGE_SIZE);
            RANDOM.nextBytes(channelToken);
            // right after the main connection, silent until the first requested page, as QEMU 7.2 does
            if (options.postcopyPreempt() && options.mode() != MigrationMode.PRECOPY_ONLY) openPreemptChannel(target);
            startReader();

            MigrationMode mode = options.mode();
            boolean postcopy = mode != MigrationMode.PRECOPY_ONLY;
            // QEMU's order: OPEN_RETURN_PATH, PING 1, POSTCOPY_ADVISE, RAM START (MEM_SIZE)
            enc.writeHeader().writeConfiguration(options.machineName());
            enc.writeCommand(new Command.OpenReturnPath());
            // the token proves our extra channel and, after a lost connection, the resumed one (QEMU never gets it)
            if (mode != MigrationMode.PRECOPY_ONLY) enc.writeCommand(new Command.ChannelToken(channelToken));
            enc.writeCommand(new Command.PeerId(id));   // our destination answers with its id (QEMU never gets this)
            enc.writeCommand(new Command.Ping(1));
            if (postcopy) {
                long summary = 0;
                for (RamBlockInfo i : infos) summary |= i.pageSize();
                enc.writeCommand(Command.PostcopyAdvise.of(summary, Wire.DEFAULT_TARGET_PAGE_SIZE));
            }
            enc.writeSectionStart(SectionType.START, DeviceStates.RAM_SECTION_ID, "ram", 0, 4);
            enc.writeMemSize(List.of(infos), postcopy, NativeMemory.pageSize());
            enc.writeEos();
            enc.writeFooter(DeviceStates.RAM_SECTION_ID);
            enc.flush();
            awaitFirstPong();

            if (mode != MigrationMode.POSTCOPY) {
                // tracking starts before the first page is read: a write during the first pass is seen
                trackers = new DirtyTracker[blocks.size()];
                for (int i = 0; i < trackers.length; i++)
                    trackers[i] = new DirtyTracker(blocks.get(i).hostAddress(), blocks.get(i).usedLength());
                enter(MigrationState.PRECOPY, null);
                precopy(mode);
            }
            if (mode == MigrationMode.POSTCOPY) awaitDestinationReady();
            if (postcopy) {
                switchToPostcopy();
                for (;;) {
                    try {
                        postcopyPass();
                        break;
                    } catch (IOException e) {
                        if (!pausable()) throw e;
                        pauseUntilResumed(e);
                    }
                }
            } else {
                completePrecopy();
            }
            endPart();
            enc.writeSectionPart(SectionType.END, DeviceStates.RAM_SECTION_ID);
            enc.writeEos();
            enc.writeFooter(DeviceStates.RAM_SECTION_ID);
            enc.writeEof();
            enc.flush();
            if (preemptEnc != null) {
                synchronized (preemptLock) {    // every page a request claimed is written before this
                    preemptClosed = true;
                    preemptEnc.writeEos();
                    preemptEnc.flush();
                }
            }
            LOG.debug("migration {}: EOF sent after {} bytes, waiting for SHUT", id, enc.position());
            if (!returnPathEnd.await(options.shutTimeout().toNanos(), TimeUnit.NANOSECONDS)) {
                failure = "no SHUT from the destination within " + options.shutTimeout();
            } else if (shutStatus == null) {
                failure = "return path closed before SHUT";
            } else if (shutStatus != 0) {
                failure = "destination reported failure: SHUT status " + shutStatus;
            } else {
                completed = true;
            }
        } catch (Throwable t) {
            failure = describeSource(t);
            if (t instanceof Error && !(t instanceof AssertionError)) fatal = (Error) t;
        } finally {
            // the reader may write requested pages from the blocks: it must end before they are let go. A failure it
            // reports from now on is only the closing
            String rf = readerFailure;
            closeChannel();
            joinQuietly(reader);
            synchronized (resumeLock) {
                resumeTarget = null;
            }
            closeTrackers();
            if (paused && !packageSent && !completed) {
                // the destination never got the guest: it goes on here
                try {
                    options.guest().resume();
                } catch (RuntimeException e) {
                    LOG.warn("migration {}: resuming the guest failed", id, e);
                }
            }
            releaseLeases();
            // last: whoever sees the final state may remove the blocks
            if (completed) {
                enter(MigrationState.COMPLETED, null);
            } else if (cancelled) {
                enter(MigrationState.CANCELLED, "cancelled on the source");
            } else {
                fail(rf != null ? rf : failure);
            }
            if (state() == MigrationState.COMPLETED) {
                LOG.info("migration {}: {} pages + {} zero pages, {} discard ranges, {} requests ({} served out of order, "
                                + "{} of them sent again because they were still in flight), postcopy {} ms at {} GB/s", id,
                        pages + preemptPages, zeroPages + preemptZeroPages, discardRanges, requests, requestedPages, resentRequests,
                        postcopyNanos() / 1_000_000, String.format("%.2f", progress().throughputGBps()));
            }
        }
        if (fatal != null) throw fatal;
    }

    /** Joins {@code t}, however long it takes: it ends once its socket is closed. */
    private void joinQuietly(Thread t) {
        if (t == null) return;
        boolean interrupted = false;
        while (t.isAlive()) {
            try {
                t.join(5000);
                if (t.isAlive()) LOG.warn("migration {}: still waiting for {} to end", id, t.getName());
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    /** The connection itself, or TLS over it with the handshake done (the destination's certificate checked). */
    private java.nio.channels.ByteChannel secure(SocketChannel c) throws IOException {
        if (tls == null) return c;
        String name = options.tls().hostname() != null ? options.tls().hostname() : target.getHostString();
        TlsWire t = tls.client(c, name, target.getPort());
        t.handshake();
        return tls.channel(t);
    }

    private String describeSource(Throwable t) {
        String m = describe(t);
        if (t instanceof IOException && !(t instanceof CodecException)) {
            return "connection to " + peer + " failed in " + state() + ": " + m;
        }
        return m;
    }

    private void closeTrackers() {
        DirtyTracker[] t = trackers;
        if (t == null) return;
        for (DirtyTracker d : t) if (d != null) d.close();
        trackers = null;
    }

    // ---- precopy ----

    private void precopy(MigrationMode mode) throws IOException {
        long deadline = options.postcopyAfter() == null ? Long.MAX_VALUE : startNanos + options.postcopyAfter().toNanos();
        long previous = Long.MAX_VALUE;
        for (int iter = 1; ; iter++) {
            iterations = iter;
            boolean whole = sendUnsent(mode == MigrationMode.HYBRID ? deadline : Long.MAX_VALUE);
            long dirty = scanDirty();
            dirtyPages = dirty;
            LOG.debug("migration {}: precopy pass {} {}, {} pages dirty", id, iter, whole ? "done" : "cut short", dirty);
            if (mode == MigrationMode.HYBRID) {
                if (!whole || switchRequested || System.nanoTime() >= deadline || dirty >= previous || iter >= options.maxIterations()) {
                    return;
                }
            } else if (dirty <= SMALL_DIRTY_SET || dirty >= previous || iter >= options.maxIterations()) {
                return;
            }
            previous = dirty;
        }
    }

    /** One pass over the pages not in {@code sent}. False when cut short by a switch request or the deadline. */
    private boolean sendUnsent(long deadline) throws IOException {
        for (int bi = 0; bi < infos.length; bi++) {
            PageBitmap s = sent[bi];
            for (long p = s.nextClearBit(0); p >= 0; p = s.nextClearBit(p + 1)) {
                if (cancelled) throw new IOException("cancelled");
                if ((p & 255) == 0 && (switchRequested || System.nanoTime() >= deadline)) return false;
                while (holdBack()) {
                    if (cancelled) throw new IOException("cancelled");
                    if (switchRequested || System.nanoTime() >= deadline) return false;
                }
                sendPage(bi, p, false);
            }
        }
        return true;
    }

    /** Collects the pages written since the last scan: sent ones become stale, and all are unsent. */
    private long scanDirty() {
        long dirty = 0;
        for (int bi = 0; bi < infos.length; bi++) {
            final long host = blocks.get(bi).hostAddress();
            final int sh = shift[bi];
            final PageBitmap s = sent[bi], st = stale[bi];
            long[] count = new long[1];
            trackers[bi].scan((start, end) -> {
                long from = (start - host) >>> sh, to = ((end - host) + (1L << sh) - 1) >>> sh;
                to = Math.min(to, s.size());
                for (long p = from; p < to; p++) {
                    if (s.testAndClear(p)) {
                        st.set(p);
                        unsentPages += 1L << (sh - TARGET_SHIFT);
                    }
                }
                count[0] += to - from;
            });
            dirty += count[0];
        }
        return dirty;
    }

    private void completePrecopy() throws IOException {
        pausedAtNanos = System.nanoTime();    // downtime starts as the guest is asked to stop, as QEMU's does
        options.guest().pause();
        paused = true;
        scanDirty();                 // the trackers are closed when the migration ends, not in the downtime
        sendUnsent(Long.MAX_VALUE);
        endPart();
        if (!handlers.isEmpty()) {
            enc.writePackaged(DeviceStates.buildPackage(handlers, false));
            deviceSections = handlers.size();
        }
        packageSent = true;
    }

    // ---- the switch: the seed's postcopy_start ----

    /**
     * Pure postcopy pauses the guest at once, so whatever the destination does to set up (create the blocks,
     * register them with userfaultfd, discard them) would be downtime. A PING after the block list, answered
     * once the destination has read it, lets the guest run on meanwhile: nothing has been sent that it could
     * make stale. A destination that does not answer within {@link #READY_WAIT_NANOS} is not waited for longer
     * (PONGs are not required by the protocol).
     */
    /**
     * SETUP ends when the destination has answered PING 1 (it read the header and the block list, and its return
     * path works): a refusal (TLS, limits, a wrong peer) fails the migration in SETUP, not a moment after it has
     * seemed to start. A peer that does not answer within {@link #READY_WAIT_NANOS} is given the benefit of the doubt
     * (the stream goes on; its own failure will tell).
     */
    private void awaitFirstPong() throws IOException {
        long until = System.nanoTime() + READY_WAIT_NANOS;
        try {
            while (!firstPong.await(5, TimeUnit.MILLISECONDS)) {
                if (cancelled) throw new IOException("cancelled");
                if (returnPathEnd.getCount() == 0) {
                    String why = readerFailure;
                    throw new IOException(why != null ? why : "the destination closed the return path before answering PING 1");
                }
                if (System.nanoTime() - until > 0) return;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the destination's PONG 1");
        }
    }

    private void awaitDestinationReady() throws IOException {
        enc.writeCommand(new Command.Ping(READY_PING));
        enc.flush();
        long until = System.nanoTime() + READY_WAIT_NANOS;
        try {
            while (!readyPong.await(10, TimeUnit.MILLISECONDS)) {
                if (cancelled) throw new IOException("cancelled");
                if (returnPathEnd.getCount() == 0) return;    // the return path ended: the next write tells why
                if (System.nanoTime() - until > 0) {
                    LOG.info("migration {}: no PONG {} from the destination within {} ms; pausing the guest anyway",
                            id, READY_PING, READY_WAIT_NANOS / 1_000_000);
                    return;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the destination's PONG " + READY_PING);
        }
    }

    private void switchToPostcopy() throws IOException {
        pausedAtNanos = System.nanoTime();    // downtime starts as the guest is asked to stop, as QEMU's does
        options.guest().pause();
        paused = true;
        // the trackers stay registered until the migration ends (run's finally): unregistering write-protect
        // tracking walks every page table entry, 190 ms for 256 MiB on this PVM guest, and the guest is paused now
        if (trackers != null) dirtyPages = scanDirty();
        endPart();
        enter(MigrationState.POSTCOPY, null);
        lastHeardNanos = lastPingNanos = System.nanoTime();
        watchSilence();
        // stale pages become discards (postcopy_each_ram_send_discard), QEMU's PING 2 / package / PING 4 around
        DiscardBatcher batcher = new DiscardBatcher(enc::writeCommand, Wire.DEFAULT_TARGET_PAGE_SIZE);
        for (int bi = 0; bi < infos.length; bi++) {
            PageBitmap st = stale[bi];
            long ratio = 1L << (shift[bi] - TARGET_SHIFT);
            batcher.beginBlock(infos[bi].idstr(), 0);
            for (long p = st.nextSetBit(0); p >= 0; ) {
                long end = st.nextClearBit(p);
                if (end < 0) end = st.size();
                batcher.addRun(p * ratio, (end - p) * ratio);
                p = end >= st.size() ? -1 : st.nextSetBit(end);
            }
            batcher.endBlock();
            st.clearAll();
        }
        discardRanges = batcher.rangeCount();
        enc.writeCommand(new Command.Ping(2));
        enc.writePackaged(DeviceStates.buildPackage(handlers, true));
        deviceSections = handlers.size();
        packageSent = true;
        enc.writeCommand(new Command.Ping(POST_PACKAGE_PING));
        enc.flush();
        LOG.debug("migration {}: switched: {} discard ranges in {} commands, {} device sections", id,
                batcher.rangeCount(), batcher.commandCount(), handlers.size());
    }

    // ---- pacing: OutgoingOptions.maxBandwidth ----

    private long paceFromNanos, paceFromBytes = -1;

    /**
     * True, after a pause of at most 1 ms, while the main stream is more than 1 ms ahead of
     * {@code maxBandwidth}; the caller checks its other duties (requests, a switch) and asks again. What is buffered
     * goes out before the pause, so the stream is smooth, not bursty.
     */
    private boolean holdBack() throws IOException {
        long rate = options.maxBandwidth();
        if (rate <= 0 || (paused && state() != MigrationState.POSTCOPY)) return false;   // never stretch downtime
        long now = System.nanoTime(), pos = enc.position();
        if (paceFromBytes < 0) {
            paceFromBytes = pos;
            paceFromNanos = now;
            return false;
        }
        long ahead = (long) ((pos - paceFromBytes) * 1e9 / rate) - (now - paceFromNanos);
        if (ahead <= 1_000_000) return false;
        enc.flush();
        java.util.concurrent.locks.LockSupport.parkNanos(Math.min(ahead - 1_000_000, 1_000_000));
        return true;
    }

    // ---- postcopy: background pages, requested pages first ----

    private void postcopyPass() throws IOException {
        Urgent.bulk(service.settings(), "sender of " + id);
        long seenRequested = -1;
        int bi = 0;
        long cursor = 0;
        final int n = infos.length;
        for (;;) {
            if (cancelled) throw new IOException("cancelled");
            heartbeat();
            if (!requestQueue.isEmpty()) {
                long served = serveRequests();
                if (served >= 0) {
                    bi = (int) (served >>> 48);
                    cursor = (served & 0xffff_ffff_ffffL) + 1;  // locality: go on after the requested page
                }
                continue;
            }
            if (holdBack()) continue;          // requests are served above, never held back
            long lr = lastRequested;
            if (lr != seenRequested) {
                seenRequested = lr;             // locality: go on after the page the postcopy channel took
                bi = (int) (lr >>> 48);
                cursor = (lr & 0xffff_ffff_ffffL) + 1;
            }
            PageBitmap s = sent[bi];
            long p = cursor < s.size() ? s.nextClearBit(cursor) : -1;
            if (p < 0) p = s.nextClearBit(0);
            if (p < 0) {
                int next = -1;
                for (int k = 1; k <= n; k++) {
                    int c = (bi + k) % n;
                    if (sent[c].nextClearBit(0) >= 0) {
                        next = c;
                        break;
                    }
                }
                if (next < 0) return;
                bi = next;
                cursor = 0;
                continue;
            }
            cursor = p + 1;
            if (s.testAndSet(p)) continue;      // a request took it for the postcopy channel just now
            sendPage(bi, p, true);
        }
    }

    // ---- silence: a connection that says nothing for silenceMillis is lost ----

    private volatile long lastHeardNanos = System.nanoTime();
    private long lastPingNanos;
    private int heartbeats;
    /** PING values from here on are heartbeats (QEMU's own use 1..5). */
    private static final int HEARTBEAT_PING = 0x48420000;

    /** From the sender's loop: a PING every third of the silence timeout, so that the destination hears from us. */
    private void heartbeat() throws IOException {
        long now = System.nanoTime(), third = service.settings().limits().silenceMillis() * 1_000_000L / 3;
        if (now - lastPingNanos < third) return;
        lastPingNanos = now;
        endPart();
        enc.writeCommand(new Command.Ping(HEARTBEAT_PING + (heartbeats++ & 0xffff)));
        enc.flush();
    }

    /**
     * While in postcopy, every quarter of the timeout: no return-path message (PONG, request) for the whole timeout
     * means the connection is lost, even with no reset or FIN (a partition): the channels are closed, which pauses
     * the migration. Runs on the service's deadline thread, so a sender blocked in a full socket is cut loose too.
     */
    private void watchSilence() {
        if (state().isFinal()) return;
        long timeout = service.settings().limits().silenceMillis() * 1_000_000L;
        if (state() == MigrationState.POSTCOPY && System.nanoTime() - lastHeardNanos > timeout && readerFailure == null) {
            readerFailed("no word from the destination for " + timeout / 1_000_000 + " ms (silenceTimeoutMillis)");
        }
        service.after(Math.max(25, timeout / 4_000_000), this::watchSilence);
    }

    /** Sends every queued requested page not yet sent, then flushes. Returns the last one sent (block << 48 | page), or -1. */
    private long serveRequests() throws IOException {
        long last = -1;
        Long r;
        while ((r = requestQueue.poll()) != null) {
            int bi = (int) (r >>> 48);
            long p = r & 0xffff_ffff_ffffL;
            if (sent[bi].testAndSet(p)) {
                requestsSkipped++;     // already on its way: never send a page twice
                continue;
            }
            sendPage(bi, p, true);
            requestedPages++;
            last = r;
        }
        if (last >= 0) enc.flush();
        return last;
    }

    /** One block page as PAGE/ZERO records, read straight from the block's memory. */
    private void sendPage(int bi, long page, boolean postcopy) throws IOException {
        int targets = 1 << (shift[bi] - TARGET_SHIFT);
        if (!partOpen) {
            enc.writeSectionPart(SectionType.PART, DeviceStates.RAM_SECTION_ID);
            partOpen = true;
            partRecords = 0;
        }
        int zeros = writeBlockPage(enc, bi, page);
        pages += targets - zeros;
        zeroPages += zeros;
        if (postcopy) postcopyPageBytes += (long) (targets - zeros) * TARGET_PAGE;
        sent[bi].set(page);
        stale[bi].clear(page);
        unsentPages -= targets;
        partRecords += targets;
        if (partRecords >= RECORDS_PER_SECTION) endPart();
    }

    /** One block page as PAGE/ZERO records on {@code e}, read straight from the block; returns the zero target pages. */
    private int writeBlockPage(StreamEncoder e, int bi, long page) throws IOException {
        RamBlockInfo info = infos[bi];
        long off = page << shift[bi];
        long addr = blocks.get(bi).hostAddress() + off;
        int targets = 1 << (shift[bi] - TARGET_SHIFT), zeros = 0;
        for (int k = 0; k < targets; k++, off += TARGET_PAGE, addr += TARGET_PAGE) {
            if (NativeMemory.isZero(addr, TARGET_PAGE)) {
                e.writeZero(info, off, 0);
                zeros++;
            } else {
                e.writePage(info, off, addr);
            }
        }
        return zeros;
    }

    private void endPart() throws IOException {
        if (!partOpen) return;
        enc.writeEos();
        enc.writeFooter(DeviceStates.RAM_SECTION_ID);
        partOpen = false;
    }

    @Override
    protected void stateChanged(MigrationState previous, MigrationState next, String reason) {
        service.changed(this, previous, next, reason);
    }

    @Override
    protected List<String> blockNames() {
        return idstrs(blocks);
    }

    // ---- the return path: the seed's source_return_path_thread ----

    /** A plain source's first return-path bytes are a TLS record (content type 21 or 22, version 3.x). */
    private boolean tlsRecord(IOException e) {
        if (tls != null || !(e instanceof CodecException ce) || ce.offset() != 0) return false;
        try {
            int type = Integer.parseInt(ce.value());
            return (type >> 8 == 0x15 || type >> 8 == 0x16) && (type & 0xff) == 0x03;
        } catch (NumberFormatException notANumber) {
            return false;
        }
    }

    private void returnPath() {
        java.nio.channels.ByteChannel c = mainIo;
        CountDownLatch end = returnPathEnd;
        if (preemptEnc != null) urgent = Urgent.thread(service.settings(), "return-path thread of " + id);
        ReturnPathDecoder dec = new ReturnPathDecoder((m, off) -> onReturnMessage(m), new BlockValidator(List.of(infos)),
                Wire.DEFAULT_MAX_PACKAGED_SIZE);
        try {
            dec.decode(c);
            if (!dec.shut() && !cancelled) readerFailed("return path: destination closed the connection before SHUT");
        } catch (IOException e) {
            if (e instanceof CodecException || e instanceof UnexpectedMessage) returnPathMalformed = true;
            if (!cancelled && shutStatus == null) readerFailed("return path: " + (tlsRecord(e)
                    ? "the destination answered with a TLS record (an alert): it takes TLS connections only; give"
                    + " the source TLS credentials (postcopy:migrate --tls-creds DIR)" : describe(e)));
        } finally {
            end.countDown();
        }
    }

    /** A return-path message that is well-formed but has no place here: the migration fails, it does not pause. */
    private static final class UnexpectedMessage extends IOException {
        private static final long serialVersionUID = 1L;

        UnexpectedMessage(String message) {
            super(message);
        }
    }

    /** The return-path thread's scheduling while it writes requested pages on the preempt channel; else null. */
    private io.postcopy.uffd.UrgentThread urgent;

    private void onReturnMessage(ReturnPathMessage m) throws IOException {
        lastHeardNanos = System.nanoTime();
        if (m instanceof ReturnPathMessage.ReqPagesId r) {
            request(r.block(), r.start(), true);
            if (urgent != null) urgent.charge();
        } else if (m instanceof ReturnPathMessage.ReqPages r) {
            request(null, r.start(), false);
            if (urgent != null) urgent.charge();
        } else if (m instanceof ReturnPathMessage.Pong p) {
            pongs++;
            if (p.value() == POST_PACKAGE_PING) endDowntime();
            if (p.value() == READY_PING) readyPong.countDown();
            if (p.value() == 1) firstPong.countDown();
            LOG.debug("migration {}: PONG {}", id, p.value());
        } else if (m instanceof ReturnPathMessage.PeerId p) {
            peerId = p.id();
        } else if (m instanceof ReturnPathMessage.Shut s) {
            // completed in precopy: the destination resumes its guest at EOF, right before SHUT 0
            if (s.status() == 0) endDowntime();
            shutStatus = s.status();
            LOG.debug("migration {}: SHUT {}", id, s.status());
            returnPathEnd.countDown();
        } else if (m instanceof ReturnPathMessage.RecvBitmap rb && state() == MigrationState.POSTCOPY_RECOVER) {
            if (recvBitmaps.putIfAbsent(rb.block(), rb.bitmap()) != null)
                throw new UnexpectedMessage("a second RECV_BITMAP for block " + rb.block());
        } else if (m instanceof ReturnPathMessage.ResumeAck a && state() == MigrationState.POSTCOPY_RECOVER
                && recvBitmaps.size() == infos.length) {
            if (a.value() != 1) throw new UnexpectedMessage("RESUME_ACK " + a.value() + ", expected 1");
            enter(MigrationState.POSTCOPY, null);    // here: the requests sent again come right after it
            resumeAck.countDown();
        } else {
            throw new UnexpectedMessage("unexpected return-path message " + m.type() + " in state " + state());
        }
    }

    private int lastRequestBlock = -1;

    private void request(String block, long start, boolean named) throws IOException {
        int bi = lastRequestBlock;
        if (named) {
            bi = -1;
            for (int i = 0; i < infos.length; i++) if (infos[i].idstr().equals(block)) bi = i;
            lastRequestBlock = bi;      // the codec already checked the block against our list
        }
        if (state() != MigrationState.POSTCOPY) {
            throw new IOException("page request for " + infos[bi].idstr() + " offset 0x" + Long.toHexString(start)
                    + " in state " + state() + " (requests are only valid in postcopy)");
        }
        requests++;
        LOG.debug("migration {}: request {} 0x{}", id, infos[bi].idstr(), Long.toHexString(start));
        if (preemptEnc != null) {
            sendRequested(bi, start >>> shift[bi]);
        } else {
            requestQueue.add(((long) bi << 48) | (start >>> shift[bi]));
        }
    }

    /**
     * With the postcopy-preempt channel: the return-path reader sends a requested page itself, on that
     * channel, at once (QEMU 7.2 lets its migration thread do it, behind whatever it is writing). Claiming
     * the page and writing it happen under one lock, so the sender's EOS there follows every claimed page.
     *
     * <p>A requested page the main stream already sent is still on its way: the destination faults only on
     * pages it does not have. It is sent again here, once (QEMU skips it, so the guest waits for the bulk bytes
     * ahead of it: up to the socket buffers' depth). The destination keeps whichever copy lands first; the
     * other finds the page present (EEXIST) and is dropped. The guest is paused, so both copies are equal. This
     * is what lets the main stream use deep socket buffers without making requested pages wait.
     */
    private void sendRequested(int bi, long page) throws IOException {
        synchronized (preemptLock) {
            if (preemptClosed) {
                requestsSkipped++;     // everything is sent
                return;
            }
            boolean inFlight = sent[bi].testAndSet(page);
            if (inFlight && onChannel[bi].testAndSet(page)) {
                requestsSkipped++;     // already sent on this channel: a repeated request gets nothing more
                return;
            }
            int targets = 1 << (shift[bi] - TARGET_SHIFT);
            int zeros = writeBlockPage(preemptEnc, bi, page);
            preemptEnc.flush();
            if (inFlight) {
                resentRequests++;
            } else {
                onChannel[bi].set(page);      // on the channel now: a repeated request gets nothing more either
                preemptPages += targets - zeros;
                preemptZeroPages += zeros;
            }
            requestedPages++;
            lastRequested = ((long) bi << 48) | page;
        }
    }
}
