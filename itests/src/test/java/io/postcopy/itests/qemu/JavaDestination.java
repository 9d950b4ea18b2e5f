package io.postcopy.itests.qemu;

import io.postcopy.backend.anon.standalone.AnonBackends;
import io.postcopy.fault.standalone.FaultHandlers;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationService;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.standalone.Migrations;
import io.postcopy.policy.Policies;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.workload.AccessPattern;
import io.postcopy.workload.LatencySummary;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Our destination, in this JVM through the plain-Java API (no OSGi framework): its own block registry,
 * fault service (anonymous-memory placement backend) and migration service, listening on 127.0.0.1 with no
 * block-name prefix, so QEMU's blocks ({@code pc.ram}, {@code pc.bios}, {@code /rom@etc/...}) are created
 * under their own names. At the package's {@code POSTCOPY_RUN} it starts a READ-ONLY workload on
 * {@code pc.ram} (uniform random pages, rate-limited threads): its reads fault on pages not yet arrived and
 * our fault thread turns them into {@code REQ_PAGES_ID}/{@code REQ_PAGES} to QEMU. The workload never writes,
 * so {@code pc.ram} ends equal to the paused source's.
 */
public final class JavaDestination implements MigrationDestination {
    private final String name;
    private final WorkloadOptions workloadOptions;
    private final RamBlockRegistry registry = RamBlocks.newRegistry();
    private final io.postcopy.fault.standalone.StandaloneFaultService faults = FaultHandlers.newService(registry, Policies.newBalloonInhibitor(),
            Policies.newMemoryLockPolicy(false), Policies.newHugePagePolicy(true));
    private final io.postcopy.migration.standalone.StandaloneMigrationService service;
    private final IncomingListener listener;
    private final AtomicReference<Workload> workload = new AtomicReference<>();
    private final AtomicReference<Throwable> workloadStartFailure = new AtomicReference<>();
    private volatile long runAtNanos;
    private LatencySummary workloadLatency;
    private long workloadReads;

    /** A destination whose workload reads with {@code threads} threads, {@code ratePerThread} pages per second each. */
    public JavaDestination(String name, int threads, long ratePerThread) {
        this(name, threads, ratePerThread, null);
    }

    /** The same, its listener over TLS with these credentials (null: plain TCP). */
    public JavaDestination(String name, int threads, long ratePerThread, io.postcopy.migration.TlsOptions tls) {
        this(name, threads, ratePerThread, tls, o -> o);
    }

    /** The same, the listener's options changed by {@code more} (e.g. switchover-ack). */
    public JavaDestination(String name, int threads, long ratePerThread, io.postcopy.migration.TlsOptions tls,
                           java.util.function.UnaryOperator<IncomingOptions> more) {
        this.name = name;
        this.workloadOptions = WorkloadOptions.builder().threads(threads).pattern(AccessPattern.UNIFORM)
                .writeFraction(0).ratePerThread(ratePerThread).randomSeed(name.hashCode())
                .stallThreshold(Duration.ofMillis(1)).build();
        faults.addBackend(AnonBackends.newBackend(), 0);
        service = Migrations.newService(registry, faults, 128 * 1024, 128 * 1024, 64 * 1024, 64 << 20);
        listener = service.listen(new InetSocketAddress("127.0.0.1", QemuDestination.freePort()),
                more.apply(IncomingOptions.defaults().onRun(this::startWorkload).withQemuPreempt(true).withTls(tls)));
    }

    /** At POSTCOPY_RUN (on the migration's resume thread): the read-only workload on pc.ram. */
    private void startWorkload() {
        runAtNanos = System.nanoTime();
        try {
            RamBlock ram = registry.byName("pc.ram");
            if (ram == null) {
                throw new IllegalStateException("no pc.ram block at RUN; blocks: " + registry.blocks());
            }
            workload.set(Workloads.start(ram, workloadOptions));
        } catch (Throwable t) {
            workloadStartFailure.set(t);
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int port() {
        return listener.port();
    }

    @Override
    public void prepare() {
        // listening since construction; postcopy-ram and return-path need nothing here (QEMU's ADVISE says so)
    }

    public RamBlockRegistry registry() {
        return registry;
    }

    /** The one migration accepted, once QEMU connected. */
    public Optional<IncomingMigration> migration() {
        List<IncomingMigration> l = listener.migrations();
        return l.isEmpty() ? Optional.empty() : Optional.of(l.get(0));
    }

    /**
     * Every migration the listener lists: every connection accepted, except a postcopy-preempt channel once
     * the listener tied it to its migration (QEMU's multifd channels, which we refuse, stay listed).
     */
    public List<IncomingMigration> listenerMigrations() {
        return listener.migrations();
    }

    /** The migration's postcopy-preempt channel as it describes it ("peer, N pages, M zero pages"), if it has one. */
    public Optional<String> postcopyChannel() {
        return migration().flatMap(IncomingMigration::postcopyChannel);
    }

    public IncomingMigration awaitMigration(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            Optional<IncomingMigration> m = migration();
            if (m.isPresent()) {
                return m.get();
            }
            Thread.sleep(10);
        }
        throw new IOException(name + ": no connection from the source within " + timeout);
    }

    /** Waits for a final state (any), returns it. */
    public MigrationState awaitFinal(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        IncomingMigration m = awaitMigration(timeout);
        long left = Math.max(1, deadline - System.nanoTime());
        return m.awaitCompletion(Duration.ofNanos(left));
    }

    @Override
    public void awaitCompleted(Duration timeout) throws IOException, InterruptedException {
        MigrationState st = awaitFinal(timeout);
        IncomingMigration m = migration().orElseThrow();
        stopWorkload();
        if (st != MigrationState.COMPLETED) {
            throw new IOException(name + ": incoming migration " + st + ": " + m.failure().orElse("(no reason)"));
        }
        if (workloadStartFailure.get() != null) {
            throw new IOException(name + ": the workload did not start at RUN", workloadStartFailure.get());
        }
        Workload w = workload.get();
        if (w == null) {
            throw new IOException(name + ": POSTCOPY_RUN never started the workload");
        }
        if (w.failure() != null) {
            throw new IOException(name + ": the workload failed", w.failure());
        }
    }

    private synchronized void stopWorkload() {
        Workload w = workload.get();
        if (w != null && workloadLatency == null) {
            w.stop();
            workloadLatency = w.latency();
            workloadReads = w.reads();
        }
    }

    /** The workload's access times (each read timed around its native copy), once stopped; null before. */
    public synchronized LatencySummary workloadLatency() {
        return workloadLatency;
    }

    public synchronized long workloadReads() {
        return workloadReads;
    }

    /** Our request counter: REQ_PAGES_ID + REQ_PAGES written to the return path. */
    public long requests() {
        return migration().map(m -> m.progress().requests()).orElse(0L);
    }

    public Optional<FaultStatistics> faultStatistics() {
        return migration().flatMap(IncomingMigration::statistics);
    }

    public int opaqueSections() {
        return migration().map(m -> m.opaqueSections().size()).orElse(0);
    }

    public long opaqueBytes() {
        return migration().map(m -> m.opaqueSections().stream().mapToLong(s -> s.bytes().length).sum()).orElse(0L);
    }

    public List<String> blockNames() {
        return registry.blocks().stream().map(RamBlock::idstr).toList();
    }

    @Override
    public byte[] ramDigest(String block) throws IOException {
        RamBlock b = registry.byName(block);
        if (b == null) {
            throw new IOException(name + ": no block " + block + " (blocks " + blockNames() + ")");
        }
        return io.postcopy.workload.PageDigest.of(b);
    }

    @Override
    public String report() {
        Optional<IncomingMigration> om = migration();
        if (om.isEmpty()) {
            return "no migration";
        }
        IncomingMigration m = om.get();
        MigrationProgress p = m.progress();
        StringBuilder b = new StringBuilder();
        b.append(String.format("our destination %s: blocks %s; %d pages + %d zero pages, %d discard ranges, "
                        + "requests %d, postcopy %d ms at %.3f GB/s, opaque device sections %d (%d B)",
                m.state(), blockNames(), p.pages(), p.zeroPages(), p.discardRanges(), p.requests(),
                p.postcopyNanos() / 1_000_000, p.throughputGBps(), opaqueSections(), opaqueBytes()));
        m.postcopyChannel().ifPresent(c -> b.append(String.format("%n    postcopy-preempt channel: %s", c)));
        m.statistics().ifPresent(s -> b.append(String.format(
                "%n    fault service: faults %d, requests %d (dedup received %d, requested %d), fault->placement "
                        + "p50 %.0f us, p99 %.0f us, max %.0f us (%d measured), blocktime %d us",
                s.faults(), s.requests(), s.dedupReceived(), s.dedupRequested(), s.latency().p50(), s.latency().p99(),
                s.latency().max(), s.latency().count(), s.blocktimeMicros())));
        LatencySummary w = workloadLatency();
        if (w != null) {
            b.append(String.format("%n    workload (%d threads, read-only): %d reads, access p50 %.1f us, p99 %.0f us, "
                            + "p99.9 %.0f us, max %.0f us, %d stalls > %.0f us",
                    workloadOptions.threads(), workloadReads(), w.p50Us(), w.p99Us(), w.p999Us(), w.maxUs(), w.stalls(),
                    w.thresholdUs()));
        }
        return b.toString();
    }

    @Override
    public void close() {
        // a migration left unfinished by a failed test (e.g. paused) first: its end wakes workload reads blocked on
        // missing pages, which stopWorkload would otherwise wait for forever
        service.migrations().stream().filter(mg -> !mg.state().isFinal()).forEach(mg -> {
            mg.cancel();
            try {
                mg.awaitCompletion(Duration.ofSeconds(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        stopWorkload();
        listener.close();
        service.migrations().forEach(mg -> mg.cancel());
        for (var mg : service.migrations()) {
            try {
                mg.awaitCompletion(Duration.ofSeconds(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        service.close();
        registry.removeAll();
    }
}
