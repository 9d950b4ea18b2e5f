package io.postcopy.migration;

import io.postcopy.migration.standalone.Migrations;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.workload.AccessPattern;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code bulkThreadNice}: the threads that move background pages run at that nice value once a guest may wait
 * on them (the destination's stream thread from RUN, the source's sender in postcopy), and only those; the
 * service takes it, like every setting, from configuration properties by name. By default (-1) they yield, at nice
 * {@code bulkThreadYieldNice} (5), only while the destination's guest faults and requested pages take a
 * postcopy-preempt channel.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BulkThreadNiceTest {
    static final long SIZE = 64L << 20;

    @Test
    void bulkThreadsRunAtTheConfiguredNiceValueInPostcopy() throws Exception {
        Map<String, Integer> nice = migrateAndSampleNice(Map.of("bulkThreadNice", 7));
        // thread names are cut to 15 characters by the kernel
        assertThat(nice).as("threads seen: %s", nice.keySet()).containsKeys("postcopy-in-in-", "postcopy-out-ou");
        assertThat(nice.get("postcopy-in-in-")).as("destination stream thread").isEqualTo(7);
        assertThat(nice.get("postcopy-out-ou")).as("source sender").isEqualTo(7);
        assertThat(nice.get("workload-pc.ram")).as("the guest keeps its priority").isZero();
    }

    @Test
    void withBulkThreadNice0TheBulkThreadsKeepTheirPriority() throws Exception {
        Map<String, Integer> nice = migrateAndSampleNice(Map.of("bulkThreadNice", 0));
        assertThat(nice).containsKeys("postcopy-in-in-", "postcopy-out-ou");
        assertThat(nice.get("postcopy-in-in-")).isZero();
        assertThat(nice.get("postcopy-out-ou")).isZero();
    }

    @Test
    void byDefaultTheBulkThreadsKeepTheirPriorityWhenNoGuestFaults() throws Exception {
        Map<String, Integer> nice = migrateAndSampleNice(Map.of(), false, OutgoingOptions.defaults());
        assertThat(nice).containsKeys("postcopy-in-in-", "postcopy-out-ou");
        assertThat(nice.get("postcopy-in-in-")).as("destination stream thread").isZero();
        assertThat(nice.get("postcopy-out-ou")).as("source sender").isZero();
    }

    @Test
    void byDefaultTheBulkThreadsDoNotYieldWhenRequestedPagesShareTheirStream() throws Exception {
        // without a preempt channel the requested pages come on the main stream: the guest waits on these threads
        Map<String, Integer> nice = migrateAndSampleNice(Map.of(), true, OutgoingOptions.defaults().withPostcopyPreempt(false));
        assertThat(nice).containsKeys("postcopy-in-in-", "postcopy-out-ou");
        assertThat(nice.get("postcopy-in-in-")).as("destination stream thread").isZero();
        assertThat(nice.get("postcopy-out-ou")).as("source sender").isZero();
    }

    /**
     * The default: while the destination's guest faults, the two bulk threads run at nice 5 (the guest's thread at 0);
     * once it stops, they return to 0 while the migration still runs (its background pages paced to 32 MiB/s so that
     * it does), and every page arrives.
     */
    @Test
    void byDefaultTheBulkThreadsYieldWhileTheGuestFaultsAndTakeTheirWeightBackWhenItStops() throws Exception {
        try (Endpoint src = new Endpoint(Map.of()); Endpoint dst = new Endpoint(Map.of())) {
            RamBlock ram = src.registry.create("pc.ram", 4 * SIZE, RamBlock.Backing.ANONYMOUS);
            Workload.fill(ram, 5);
            AtomicReference<Workload> guest = new AtomicReference<>();
            IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().onRun(() ->
                    guest.set(Workloads.start(dst.registry.byName("pc.ram"), WorkloadOptions.builder().threads(1)
                            .pattern(AccessPattern.UNIFORM).contentSeed(5).checkReads(true).build()))));
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener.port()),
                    OutgoingOptions.defaults().withMode(MigrationMode.POSTCOPY).withMaxBandwidth(32L << 20));
            Workload w = Endpoint.awaitGuest(guest);
            assertThat(w).as("the guest ran").isNotNull();
            Map<String, Integer> faulting = Await.until("both bulk threads at nice 5 while the guest faults",
                    Duration.ofSeconds(20), BulkThreadNiceTest::threadNice,
                    m -> is(m, "postcopy-in-in-", 5) && is(m, "postcopy-out-ou", 5));
            assertThat(faulting.get("workload-pc.ram")).as("the guest keeps its priority").isZero();
            assertThat(out.state()).as("still migrating").isEqualTo(MigrationState.POSTCOPY);
            w.stop();
            // the threads are the migration's own: present means it still runs
            Await.until("both bulk threads back at nice 0 once the guest stopped faulting", Duration.ofSeconds(20),
                    BulkThreadNiceTest::threadNice, m -> is(m, "postcopy-in-in-", 0) && is(m, "postcopy-out-ou", 0));
            assertThat(out.state()).as("still migrating when they took their weight back").isEqualTo(MigrationState.POSTCOPY);
            assertThat(out.awaitCompletion(Duration.ofSeconds(40))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(w.readMismatches()).isZero();
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        }
    }

    private static boolean is(Map<String, Integer> nice, String thread, int value) {
        Integer n = nice.get(thread);
        return n != null && n == value;
    }

    @Test
    void unknownSettingsAndBadValuesAreRefusedByName() {
        try (Endpoint e = new Endpoint()) {
            assertThatThrownBy(() -> Migrations.newService(e.registry, e.faults, Map.of("bulkThreadNise", 5)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bulkThreadNise")
                    .hasMessageContaining("bulkThreadNice");
            assertThatThrownBy(() -> Migrations.newService(e.registry, e.faults, Map.of("bulkThreadNice", 20)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bulkThreadNice 20 not in 0..19");
            assertThatThrownBy(() -> Migrations.newService(e.registry, e.faults, Map.of("bulkThreadNice", -2)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bulkThreadNice -2 not in 0..19 (or -1");
            assertThatThrownBy(() -> Migrations.newService(e.registry, e.faults, Map.of("bulkThreadYieldNice", 0)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bulkThreadYieldNice 0 not in 1..19");
            assertThatThrownBy(() -> Migrations.newService(e.registry, e.faults, Map.of("sendBufferSize", "lots")))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("sendBufferSize = \"lots\"");
            assertThatThrownBy(() -> Migrations.newService(e.registry, e.faults, Map.of("realtimeCpuPercent", 0)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("realtimeCpuPercent 0 not in 1..100");
        }
    }

    /**
     * A pure postcopy migration of {@link #SIZE} between two endpoints configured with {@code config}, a guest
     * reading on the destination; the highest nice value each thread name of this JVM showed meanwhile.
     */
    private static Map<String, Integer> migrateAndSampleNice(Map<String, ?> config) throws Exception {
        return migrateAndSampleNice(config, true, OutgoingOptions.defaults());
    }

    /** As {@link #migrateAndSampleNice(Map)}, with a guest on the destination or none, and these options. */
    private static Map<String, Integer> migrateAndSampleNice(Map<String, ?> config, boolean withGuest, OutgoingOptions options)
            throws Exception {
        Map<String, Integer> seen = new ConcurrentHashMap<>();
        AtomicBoolean stop = new AtomicBoolean();
        Thread sampler = new Thread(() -> {
            while (!stop.get()) {
                threadNice().forEach((k, v) -> seen.merge(k, v, Math::max));
                LockSupport.parkNanos(200_000);
            }
        });
        try (Endpoint src = new Endpoint(config); Endpoint dst = new Endpoint(config)) {
            RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
            Workload.fill(ram, 5);
            AtomicReference<Workload> guest = new AtomicReference<>();
            IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().onRun(() -> {
                if (withGuest) guest.set(Workloads.start(dst.registry.byName("pc.ram"), WorkloadOptions.builder().threads(1)
                        .pattern(AccessPattern.UNIFORM).contentSeed(5).checkReads(true).build()));
            }));
            sampler.start();
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener.port()),
                    options.withMode(MigrationMode.POSTCOPY));
            assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            if (withGuest) {
                Workload w = Endpoint.awaitGuest(guest);
                assertThat(w).as("the guest ran").isNotNull();
                w.stop();
                assertThat(w.readMismatches()).isZero();
            } else {
                assertThat(out.progress().requests()).as("no guest: no page requests").isZero();
            }
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        } finally {
            stop.set(true);
            sampler.join();
        }
        return seen;
    }

    /** Comm (15 chars) -> highest nice value among this JVM's threads of that name, from /proc. */
    static Map<String, Integer> threadNice() {
        return Endpoint.threadStat(16);    // field 19: nice
    }
}
