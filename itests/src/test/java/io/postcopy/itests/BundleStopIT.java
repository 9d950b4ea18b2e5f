package io.postcopy.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import io.postcopy.migration.MigrationMode;
import io.postcopy.migration.MigrationService;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.migration.OutgoingOptions;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.testkit.Await;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.WorkloadService;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import javax.inject.Inject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.util.tracker.ServiceTracker;

/**
 * Stopping the RAM-block bundle while a migration and a workload are busy on a block (issue 12): DS deactivates
 * the migration service first (its migrations are cancelled and joined), the workload service (its workloads
 * stopped), then the registry, which removes the blocks only once nobody holds them. The JVM lives on.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class BundleStopIT {

    @Inject
    BundleContext context;

    @Configuration
    public Option[] config() {
        return PostcopyKaraf.withTestKit();
    }

    private <T> T service(Class<T> type) throws InterruptedException {
        ServiceTracker<T, T> t = new ServiceTracker<>(context, type, null);
        t.open();
        try {
            T s = t.waitForService(TimeUnit.SECONDS.toMillis(30));
            assertNotNull(type.getSimpleName() + " came back", s);
            return s;
        } finally {
            t.close();
        }
    }

    private Bundle bundle(String bsn) {
        for (Bundle b : context.getBundles()) if (bsn.equals(b.getSymbolicName())) return b;
        throw new AssertionError("no bundle " + bsn);
    }

    private static boolean anyThreadStartsWith(String prefix) {
        for (Thread t : Thread.getAllStackTraces().keySet()) if (t.getName().startsWith(prefix)) return true;
        return false;
    }

    @Test
    public void stoppingTheRegistryBundleEndsMigrationsAndWorkloadsBeforeTheMemoryGoes() throws Exception {
        RamBlockRegistry registry = service(RamBlockRegistry.class);
        MigrationService migrations = service(MigrationService.class);
        WorkloadService workloads = service(WorkloadService.class);
        RamBlock block = registry.create("it-stop", 64L << 20, RamBlock.Backing.ANONYMOUS);
        Workload.fill(block, 5);
        Workload w = workloads.start("it-stop", WorkloadOptions.builder().threads(1).writeFraction(0.5).build());
        try (ServerSocket silent = new ServerSocket()) {
            silent.bind(new InetSocketAddress("127.0.0.1", 0));
            OutgoingMigration out = migrations.migrate(new InetSocketAddress("127.0.0.1", silent.getLocalPort()),
                    OutgoingOptions.defaults().withBlocks("it-stop").withMode(MigrationMode.PRECOPY_ONLY));
            try (Socket peer = silent.accept()) {    // never reads: the sender stays busy on the block
                Await.until("the sender busy (pages sent)", Duration.ofSeconds(20), () -> out.progress().pages() > 0);
                assertTrue(w.isRunning());
                assertTrue(block.holders().toString(), block.holders().contains("migration " + out.id()));

                Bundle ramblock = bundle("io.postcopy.ramblock");
                ramblock.stop();
                try {
                    assertEquals(MigrationState.CANCELLED, out.state());
                    assertFalse("the workload stopped", w.isRunning());
                    assertNull(w.failure());
                    assertTrue(block.holders().toString(), block.holders().isEmpty());
                    assertFalse(anyThreadStartsWith("postcopy-out-" + out.id()));
                    assertFalse(anyThreadStartsWith("workload-it-stop"));
                } finally {
                    ramblock.start();
                }
            }
        }
        RamBlockRegistry again = service(RamBlockRegistry.class);
        assertNull("the block went with the registry", again.byName("it-stop"));
        // and the services work again
        RamBlock next = again.create("it-stop-2", 1L << 20, RamBlock.Backing.ANONYMOUS);
        assertEquals(next, again.remove("it-stop-2"));
        assertTrue(service(MigrationService.class).migrations().isEmpty()
                || service(MigrationService.class).migrations().stream().allMatch(m -> m.state().isFinal()));
    }
}
