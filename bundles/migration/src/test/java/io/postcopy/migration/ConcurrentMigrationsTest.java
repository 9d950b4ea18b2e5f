package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.Workload;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Two migrations at once into one listener, on distinct blocks; and one registry acting as source and
 * destination at once through the block-name prefix.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ConcurrentMigrationsTest {
    final Endpoint a = new Endpoint(), b = new Endpoint(), dst = new Endpoint();

    @AfterEach
    void close() {
        a.close();
        b.close();
        dst.close();
    }

    @Test
    void twoSourcesIntoOneListenerAtOnce() throws Exception {
        RamBlock ra = a.registry.create("vm-a/ram", 32 << 20, RamBlock.Backing.ANONYMOUS);
        RamBlock rb = b.registry.create("vm-b/ram", 48 << 20, RamBlock.Backing.MEMFD);
        Workload.fill(ra, 1);
        Workload.fill(rb, 2);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults());
        InetSocketAddress to = new InetSocketAddress("127.0.0.1", l.port());
        OutgoingMigration oa = a.service.migrate(to, OutgoingOptions.defaults().withMode(MigrationMode.HYBRID)
                .withPostcopyAfter(Duration.ofMillis(20)));
        OutgoingMigration ob = b.service.migrate(to, OutgoingOptions.defaults());
        assertThat(oa.awaitCompletion(Duration.ofSeconds(30))).as("%s", oa.failure()).isEqualTo(MigrationState.COMPLETED);
        assertThat(ob.awaitCompletion(Duration.ofSeconds(30))).as("%s", ob.failure()).isEqualTo(MigrationState.COMPLETED);
        for (IncomingMigration in : l.migrations()) {
            MigrationState s = in.awaitCompletion(Duration.ofSeconds(10));
            assertThat(s).as("%s: %s", in.id(), in.failure()).isEqualTo(MigrationState.COMPLETED);
        }
        // each source's preempt channel ends with EOS after its migration: neither is a migration of its own
        // (nor fails as one) even when its migration ended within the channel's 100 ms of silence
        Thread.sleep(300);
        assertThat(l.migrations()).hasSize(2).allSatisfy(in ->
                assertThat(in.state()).as("%s: %s", in.id(), in.failure()).isEqualTo(MigrationState.COMPLETED));
        assertThat(Endpoint.mismatchedPages(ra, dst.registry.byName("vm-a/ram"))).isZero();
        assertThat(Endpoint.mismatchedPages(rb, dst.registry.byName("vm-b/ram"))).isZero();
        assertThat(dst.service.migrations()).hasSize(2);
        assertThat(dst.service.get(l.migrations().get(0).id())).containsSame(l.migrations().get(0));
    }

    @Test
    void oneRegistryIsSourceAndDestinationThroughThePrefix() throws Exception {
        RamBlock ram = a.registry.create("pc.ram", 16 << 20, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 3);
        IncomingListener l = a.service.listen(null, IncomingOptions.defaults().withBlockPrefix("incoming/"));
        OutgoingMigration out = a.service.migrate(new InetSocketAddress("127.0.0.1", l.port()),
                OutgoingOptions.defaults().withBlocks("pc.ram"));
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = l.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.COMPLETED);
        RamBlock copy = a.registry.byName("incoming/pc.ram");
        assertThat(in.blocks()).containsExactly(copy);
        assertThat(Endpoint.mismatchedPages(ram, copy)).isZero();
    }
}
