package io.postcopy.migration.internal.source;

import io.postcopy.codec.CodecException;
import io.postcopy.migration.DeviceStateHandler;
import io.postcopy.migration.MigrationException;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.migration.OutgoingOptions;
import io.postcopy.migration.internal.AbstractMigration;
import io.postcopy.migration.internal.DeviceStates;
import io.postcopy.migration.internal.MigrationServiceImpl;
import io.postcopy.migration.internal.channel.Tls;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockLease;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The source of a migration: the API's face of it and the state its threads share; the seed's {@code migration_thread}
 * is {@link SourceRun}.
 *
 * <p>Threads: the sender {@code postcopy-out-ID} writes everything on the main stream ({@link SourceRun}, {@link Precopy},
 * {@link PostcopyPass}, {@link Recovery}); per connection a return-path reader {@code postcopy-rp-ID}
 * ({@link ReturnPathReader}), which with a preempt channel also writes the requested pages there ({@link PreemptSender});
 * the service's deadline thread watches for silence ({@link Silence}); callers of the API only set flags, close the
 * connections, hand over a resume address and read the counters.
 *
 * <p>Lifetime: the blocks are leased from {@link #resolveBlocks} until both threads have ended. Only the sender
 * enters a final state, and only after it has joined the reader, closed the trackers and let go of the blocks:
 * whoever sees COMPLETED, FAILED or CANCELLED may remove them. {@link #cancel} and a failing reader only ask.
 */
public final class Outgoing extends AbstractMigration implements OutgoingMigration {
    final InetSocketAddress target;
    final OutgoingOptions options;
    final List<DeviceStateHandler> handlers;
    /** Made with the migration, not in its downtime. */
    final DeviceStates.Packager packager = new DeviceStates.Packager();
    final Connections connections;
    final Downtime downtime = new Downtime();
    final Silence silence = new Silence(this);
    final Pacing pacing = new Pacing(this);
    final SourceRun sender = new SourceRun(this);
    final Recovery recovery = new Recovery(this);
    private final List<RamBlockLease> leases = new ArrayList<>();

    /** Set by {@link #resolveBlocks}, before any thread of the migration starts. */
    PageBook book;
    RamWriter writer;
    PreemptSender preempt;

    volatile boolean switchRequested, cancelled;
    /** The first failure the return path (or its silence) showed; the sender reports it once both threads have ended. */
    volatile String readerFailure;

    // counters, single writer each: the return-path reader for requests, the sender for the others
    volatile long requests, requestedPages, prefetchedPages, dirtyPages, discardRanges;
    /** The largest prefetch window, in target pages (options, else the service's setting); 0: off. */
    final int prefetchMaxPages;
    volatile int iterations, deviceSections;

    public Outgoing(String id, MigrationServiceImpl service, InetSocketAddress target, OutgoingOptions options,
                    List<DeviceStateHandler> handlers, Tls tls) {
        super(id, service);
        this.target = target;
        this.options = options;
        this.handlers = handlers;
        this.connections = new Connections(this, tls);
        this.peer = target.getHostString() + ":" + target.getPort();
        this.prefetchMaxPages = options.prefetchMaxPages() >= 0 ? options.prefetchMaxPages() : service.settings().prefetchMaxPages();
    }

    @Override public OutgoingOptions options() { return options; }

    @Override
    public Optional<Duration> downtime() {
        return downtime.get();
    }

    @Override
    public Optional<Duration> downtimeToPackageSent() {
        return downtime.toPackageSent();
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
        connections.close();
        recovery.wake();
    }

    @Override
    public void pause() {
        if (state() != MigrationState.POSTCOPY)
            throw new IllegalStateException("migration " + id() + " is " + state() + ", not POSTCOPY");
        connections.close();      // the sender and the reader find the connection lost, and the migration pauses
    }

    @Override
    public void resume(InetSocketAddress to) {
        if (state() != MigrationState.POSTCOPY_PAUSED)
            throw new IllegalStateException("migration " + id() + " is " + state() + ", not POSTCOPY_PAUSED");
        recovery.resumeTo(to);
    }

    /**
     * The preempt channel's pages that {@link PageBook#unsentPages} already leaves out: none until a resume recounts it
     * from the destination's received bitmaps (the sender alone keeps that count; pages the return-path thread sends
     * on the channel are taken off in {@link #progress}).
     */
    volatile long preemptPagesCounted;

    @Override
    public MigrationProgress progress() {
        long bytes = writer.bytes() + preempt.position();
        long pp = preempt.pages, pz = preempt.zeroPages;
        long p = writer.pages + pp, postcopyBytes = writer.postcopyPageBytes + pp * TARGET_PAGE;
        return new MigrationProgress(bytes, p, writer.zeroPages + pz, book.totalPages,
                book.unsentPages - (pp + pz - preemptPagesCounted),
                iterations, dirtyPages, discardRanges, requests, requestedPages + preempt.requestedPages, postcopyBytes,
                postcopyNanos(), throughput(postcopyBytes, p * TARGET_PAGE), deviceSections, 0,
                prefetchedPages + preempt.prefetchedPages);
    }

    /** Selects and leases the blocks; called before the thread starts so that bad names fail {@code migrate} itself. */
    public void resolveBlocks() {
        List<RamBlock> l = new ArrayList<>();
        if (options.blocks().isEmpty()) {
            l.addAll(service.registry().blocks());
        } else {
            for (String n : options.blocks()) {
                RamBlock b = service.registry().byName(n);
                if (b == null) throw new MigrationException("no RAM block named \"" + n + "\"");
                l.add(b);
            }
        }
        if (l.isEmpty()) throw new MigrationException("no RAM blocks to migrate");
        try {
            for (RamBlock b : l) leases.add(b.lease("migration " + id(), this::cancel));
        } catch (IllegalStateException e) {
            releaseLeases();
            throw new MigrationException(e.getMessage());
        }
        book = new PageBook(List.copyOf(l));
        writer = new RamWriter(book);
        preempt = new PreemptSender(book, writer, PrefetchWindow.of(book, prefetchMaxPages));
    }

    /** The sender's thread: the whole migration. */
    public void run() {
        sender.run();
    }

    void releaseLeases() {
        for (RamBlockLease l : leases) l.close();
        leases.clear();
    }

    /** From the return-path reader or the silence watch: the first reason is kept, and the connections close. */
    void readerFailed(String reason) {
        if (readerFailure == null) readerFailure = reason;
        connections.close();
    }

    /** A failure's reason; a lost connection's names the peer and the phase. */
    String describeSource(Throwable t) {
        String m = describe(t);
        if (t instanceof IOException && !(t instanceof CodecException)) {
            return "connection to " + peer + " failed in " + state() + ": " + m;
        }
        return m;
    }

    @Override
    public List<String> blockNames() {
        PageBook b = book;
        return idstrs(b == null ? null : b.blocks);
    }
}
