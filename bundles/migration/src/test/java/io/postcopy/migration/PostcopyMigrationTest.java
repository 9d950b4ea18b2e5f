package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.fault.FaultStatistics;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.AccessPattern;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * 256 MiB between two endpoints of this JVM over 127.0.0.1, with a writing workload on the source (paused at
 * the switch) and a reading workload on the destination started at RUN; every page compared at the end.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class PostcopyMigrationTest {
    static final long SIZE = 256L << 20;
    static final long VGA = 8L << 20;

    final Endpoint src = new Endpoint(), dst = new Endpoint();
    Workload srcLoad;
    final AtomicReference<Workload> dstLoad = new AtomicReference<>();

    @AfterEach
    void close() {
        if (srcLoad != null) srcLoad.stop();
        Workload d = dstLoad.get();
        if (d != null) d.stop();
        src.close();
        dst.close();
    }

    /** Runs a migration in {@code mode}; returns it completed, after checking every page. */
    OutgoingMigration migrate(MigrationMode mode, Duration postcopyAfter) throws Exception {
        return migrate(mode, postcopyAfter, true);
    }

    OutgoingMigration migrate(MigrationMode mode, Duration postcopyAfter, boolean preempt) throws Exception {
        return migrate(mode, postcopyAfter, preempt, 0);
    }

    /** @param maxBandwidth bytes/s, 0 for none */
    OutgoingMigration migrate(MigrationMode mode, Duration postcopyAfter, boolean preempt, long maxBandwidth) throws Exception {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        RamBlock vga = src.registry.create("vga.ram", VGA, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 7);
        // vga.ram: a few written pages among zero pages
        Workload.fill(vga, 8);
        vga.discard(PAGE_RUN, VGA - 2 * PAGE_RUN);
        // the writer's hot set is the block's first 5 %, which precopy sends first: hybrid's discards then do not
        // depend on the writer happening to hit, with a few writes on a busy host, one of the few pages sent so far
        srcLoad = Workloads.start(ram, WorkloadOptions.builder().threads(1).writeFraction(1.0).contentSeed(7)
                .pattern(AccessPattern.HOTSET).hotSet(0.05, 0.9).randomSeed(3).build());

        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().onRun(() -> {
            RamBlock in = dst.registry.byName("pc.ram");
            dstLoad.set(Workloads.start(in, WorkloadOptions.builder().threads(1).checkReads(true).randomSeed(5).build()));
        }));
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener.port()),
                OutgoingOptions.defaults().withMode(mode).withPostcopyAfter(postcopyAfter)
                        .withGuest(GuestControl.of(srcLoad::pause, srcLoad::resume)).withPostcopyPreempt(preempt)
                        .withMaxBandwidth(maxBandwidth));
        assertThat(out.awaitCompletion(Duration.ofSeconds(90))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = listener.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
        // both sides ours: each knows the other's id for this migration (PEER_ID both ways)
        assertThat(out.peerId()).contains(in.id());
        assertThat(in.peerId()).contains(out.id());
        assertThat(srcLoad.isPaused()).isTrue();
        assertThat(srcLoad.writes()).isGreaterThan(0);

        Workload reader = dstLoad.get();
        assertThat(reader).as("destination guest resumed at RUN").isNotNull();
        reader.stop();
        assertThat(reader.failure()).isNull();
        assertThat(reader.reads()).isGreaterThan(0);
        assertThat(reader.readMismatches()).isZero();

        RamBlock dram = dst.registry.byName("pc.ram"), dvga = dst.registry.byName("vga.ram");
        assertThat(Endpoint.mismatchedPages(ram, dram)).isZero();
        assertThat(Endpoint.mismatchedPages(vga, dvga)).isZero();
        assertThat(Workload.verify(dram).ok()).isTrue();

        MigrationProgress p = out.progress();
        FaultStatistics st = in.statistics().orElseThrow();
        System.out.printf("%s: %d pages, %d zero, %d discard ranges, %d requests (%d out of order), %d iterations, "
                        + "postcopy %.1f ms, %.2f GB/s; destination %d faults, %d requests, latency p50 %.0f us p99 %.0f us%n",
                mode, p.pages(), p.zeroPages(), p.discardRanges(), p.requests(), p.requestedPages(), p.iterations(),
                p.postcopyNanos() / 1e6, p.throughputGBps(), st.faults(), st.requests(), st.latency().p50(), st.latency().p99());
        assertThat(p.remainingPages()).isZero();
        assertThat(p.zeroPages()).isGreaterThan(0);
        assertThat(st.requests()).as("page requests").isGreaterThan(0);
        assertThat(p.requests()).isEqualTo(st.requests());
        assertThat(p.requestedPages()).as("requested pages sent ahead of the background scan").isGreaterThan(0);
        assertThat(in.progress().requests()).isEqualTo(st.requests());
        assertThat(in.missing()).hasValueSatisfying(m -> assertThat(m.totalBytes()).isZero());
        // the preempt channel is part of its migration, not one of its own
        assertThat(listener.migrations()).containsExactly(in);
        if (preempt) {
            assertThat(in.postcopyChannel()).as("postcopy-preempt channel").isPresent();
            long onChannel = Long.parseLong(in.postcopyChannel().get().replaceAll(".*, (\\d+) pages, (\\d+) zero pages", "$1"))
                    + Long.parseLong(in.postcopyChannel().get().replaceAll(".*, (\\d+) zero pages", "$1"));
            assertThat(onChannel).as("pages placed from the postcopy channel = pages the source sent there")
                    .isEqualTo(p.requestedPages()).isGreaterThan(0);
        } else {
            assertThat(in.postcopyChannel()).isEmpty();
        }
        return out;
    }

    static final long PAGE_RUN = 16 * 4096;

    @Test
    void purePostcopy() throws Exception {
        OutgoingMigration out = migrate(MigrationMode.POSTCOPY, null);
        MigrationProgress p = out.progress();
        assertThat(p.iterations()).isZero();
        assertThat(p.discardRanges()).isZero();
        // nothing is sent twice: exactly one record per target page
        assertThat(p.pages() + p.zeroPages()).isEqualTo((SIZE + VGA) / 4096);
        assertThat(p.postcopyPageBytes()).isEqualTo(p.pages() * 4096);
    }

    /** Comm (thread name, 15 chars) -> scheduling policy of this JVM's threads, from /proc (0 OTHER, 1 FIFO). */
    static java.util.Map<String, Integer> threadPolicies() {
        return Endpoint.threadStat(38);    // field 41: policy
    }

    @Test
    void threadsOnARequestsWayRunRealTimeByDefault() throws Exception {
        java.util.Map<String, Integer> seen = new java.util.concurrent.ConcurrentHashMap<>();
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread sampler = new Thread(() -> {
            while (!stop.get()) {
                threadPolicies().forEach((k, v) -> seen.merge(k, v, Math::max));
                java.util.concurrent.locks.LockSupport.parkNanos(500_000);
            }
        });
        sampler.start();
        try {
            migrate(MigrationMode.POSTCOPY, null);
        } finally {
            stop.set(true);
            sampler.join();
        }
        int want = "root".equals(System.getProperty("user.name")) ? 1 : 0;
        if (want == 0) System.err.println("NOT ROOT: SCHED_FIFO is refused, checking that the threads kept running");
        // names are cut to 15 characters by the kernel
        for (String t : new String[] {"postcopy-fault-", "postcopy-rp-out", "postcopy-preemp"}) {
            assertThat(seen).as("threads seen: %s", seen.keySet()).containsKey(t);
            assertThat(seen.get(t)).as("policy of %s", t).isEqualTo(want);
        }
        // the bulk stream stays SCHED_OTHER: the source's sender always; the destination's stream thread is urgent
        // during the switch only, and SwitchThreadTest checks that it streams the background pages at its own priority
        assertThat(seen.get("postcopy-out-ou")).as("the source's sender stays SCHED_OTHER").isZero();
    }

    @Test
    void purePostcopyWithoutPreemptChannel() throws Exception {
        OutgoingMigration out = migrate(MigrationMode.POSTCOPY, null, false);
        MigrationProgress p = out.progress();
        assertThat(p.pages() + p.zeroPages()).isEqualTo((SIZE + VGA) / 4096);
    }

    @Test
    void hybrid() throws Exception {
        // Precopy is cut mid-pass: at 128 MiB/s it moves at most ~40 of the 264 MiB in its 300 ms (unpaced, a quiet
        // host finished two whole passes in that time and the destination's reader then never faulted). The rest
        // goes in postcopy, so the reader faults and requests pages.
        OutgoingMigration out = migrate(MigrationMode.HYBRID, Duration.ofMillis(300), true, 128L << 20);
        MigrationProgress p = out.progress();
        assertThat(p.iterations()).isGreaterThanOrEqualTo(1);
        assertThat(p.discardRanges()).as("discards of pages written after they were sent").isGreaterThan(0);
        assertThat(p.pages() + p.zeroPages()).isGreaterThan((SIZE + VGA) / 4096);
    }
}
