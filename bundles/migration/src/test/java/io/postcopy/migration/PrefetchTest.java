package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.fault.FaultStatistics;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.VcpuReader;
import io.postcopy.workload.AccessPattern;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Prefetch that learns ({@code prefetchMaxPages}): in postcopy the source pushes the pages after a requested one
 * while the guest's requests follow each other. A destination guest reads a block front to back while the main
 * stream is held back to a trickle ({@code maxBandwidth}): with prefetch it faults on a small fraction of the pages,
 * without it on about every page; a guest reading at random gets next to nothing pushed. Every page is checked in
 * every run. Counts only, never times.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class PrefetchTest {
    static final long SIZE = 16L << 20;
    static final long PAGES = SIZE / 4096;
    /** The main stream brings about 64 pages a second: the reader's own requests bring nearly all it reads. */
    static final long TRICKLE = 256 << 10;

    record Run(long faults, long requests, long prefetched, long requestedPages) {}

    @Test
    void aSequentialReaderFaultsOnAFractionOfThePagesWithPrefetchAndOnNearlyEachWithout() throws Exception {
        // off by the service's setting; on by the migration's own, over the same setting
        Run off = migrate(Map.of("prefetchMaxPages", 0), OutgoingOptions.defaults(), TRICKLE, 0);
        Run on = migrate(Map.of("prefetchMaxPages", 0), OutgoingOptions.defaults().withPrefetchMaxPages(64), TRICKLE, 0);
        System.out.printf("sequential reader of %d pages: prefetch off %s, on %s%n", PAGES, off, on);
        assertThat(off.prefetched()).isZero();
        assertThat(off.faults()).as("without prefetch: about one fault per page").isGreaterThan(PAGES / 2);
        assertThat(on.faults()).as("with prefetch: a fraction of the pages").isLessThan(PAGES / 4);
        assertThat(on.prefetched()).as("the pages it did not fault on were pushed").isGreaterThan(PAGES / 2);
        assertThat(on.requestedPages()).as("pushed pages are part of those served out of order")
                .isGreaterThanOrEqualTo(on.prefetched());
    }

    @Test
    void withoutAPreemptChannelTheMainStreamPushesThem() throws Exception {
        Run on = migrate(Map.of(), OutgoingOptions.defaults().withPostcopyPreempt(false).withPrefetchMaxPages(64), TRICKLE, 0);
        System.out.printf("sequential reader of %d pages, no preempt channel: %s%n", PAGES, on);
        assertThat(on.faults()).isLessThan(PAGES / 4);
        assertThat(on.prefetched()).isGreaterThan(PAGES / 2);
    }

    @Test
    void aRandomReaderGetsNextToNothingPushed() throws Exception {
        Run r = migrate(Map.of(), OutgoingOptions.defaults().withPrefetchMaxPages(64), 4L << 20, 600);
        System.out.printf("random reader of %d pages: %s%n", PAGES, r);
        assertThat(r.requests()).as("the reader faulted").isGreaterThan(100);
        assertThat(r.prefetched()).as("pushed pages: a small fraction of the requests").isLessThanOrEqualTo(r.requests() / 20);
    }

    @Test
    void outOfRangeWindowsAreRefused() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> OutgoingOptions.defaults().withPrefetchMaxPages(4097))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("prefetchMaxPages 4097");
        try (Endpoint e = new Endpoint()) {
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> io.postcopy.migration.standalone.Migrations.newService(
                            e.registry, e.faults, Map.of("prefetchMaxPages", -1)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("prefetchMaxPages -1 not in 0..4096");
        }
    }

    /**
     * A pure postcopy migration of one {@link #SIZE} block, the main stream held to {@code bandwidth}; at RUN a guest
     * on the destination reads it: front to back once, a page at a time in ascending order, each read checked
     * ({@code randomReads} 0: a workload thread, not one {@code memcpy} of the block, which glibc may copy backwards),
     * or that many random pages (a vCPU stand-in).
     */
    private static Run migrate(Map<String, ?> config, OutgoingOptions options, long bandwidth, int randomReads) throws Exception {
        try (Endpoint src = new Endpoint(config); Endpoint dst = new Endpoint(config)) {
            RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
            Workload.fill(ram, 11);
            AtomicReference<VcpuReader> reader = new AtomicReference<>();
            AtomicReference<Workload> sequential = new AtomicReference<>();
            IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().onRun(() -> {
                RamBlock in = dst.registry.byName("pc.ram");
                if (randomReads == 0) {
                    sequential.set(Workloads.start(in, WorkloadOptions.builder().threads(1).pattern(AccessPattern.SEQUENTIAL)
                            .accessesPerThread(PAGES).contentSeed(11).checkReads(true).build()));
                    return;
                }
                VcpuReader r = VcpuReader.randomPages(in, randomReads, 3).expect(ram.hostAddress()).named("vcpu-prefetch");
                reader.set(r);
                r.start();
            }));
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener.port()),
                    options.withMode(MigrationMode.POSTCOPY).withMaxBandwidth(bandwidth));
            assertThat(out.awaitCompletion(Duration.ofSeconds(120))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            IncomingMigration in = listener.migrations().get(0);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            if (randomReads == 0) {
                Workload w = Endpoint.awaitGuest(sequential);
                assertThat(w.awaitTermination(30, TimeUnit.SECONDS)).as("the reader finished its pass").isTrue();
                assertThat(w.failure()).isNull();
                assertThat(w.reads()).as("one pass over the block").isEqualTo(PAGES);
                assertThat(w.readMismatches()).as("what the guest read").isZero();
            } else {
                VcpuReader r = io.postcopy.testkit.Await.until("the reader started at RUN", Duration.ofSeconds(10), reader::get,
                        java.util.Objects::nonNull);
                assertThat(r.awaitDone(Duration.ofSeconds(30))).as("the reader finished").isTrue();
                assertThat(r.mismatches()).as("what the guest read").isZero();
            }
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).as("every page").isZero();
            FaultStatistics st = in.statistics().orElseThrow();
            MigrationProgress p = out.progress();
            assertThat(p.remainingPages()).isZero();
            return new Run(st.faults(), p.requests(), p.prefetchedPages(), p.requestedPages());
        }
    }
}
