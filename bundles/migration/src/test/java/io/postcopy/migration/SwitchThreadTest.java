package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.workload.Workload;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The destination's stream thread runs as an urgent thread during the switch, while no guest runs anywhere: a device
 * section's handler, called from the package, sees real time (tests run as root, so it is granted). Once RUN is read
 * and the PING after it answered, the thread is back at its own scheduling while it streams the remaining pages, so
 * background pages never run at real time.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SwitchThreadTest {
    static final int SCHED_OTHER = 0, SCHED_FIFO = 1;
    /** Paces the source so that the postcopy phase lasts ~2 s: the thread is still there to be looked at. */
    static final long RATE = 32L << 20;

    @Test
    void theStreamThreadIsUrgentDuringTheSwitchOnlyAndStreamsAtItsOwnPriorityAfter() throws Exception {
        AtomicReference<int[]> inPackage = new AtomicReference<>();
        AtomicReference<String> streamTask = new AtomicReference<>();
        AtomicReference<int[]> afterSwitch = new AtomicReference<>();
        try (Endpoint src = new Endpoint(Map.of()); Endpoint dst = new Endpoint(Map.of())) {
            RamBlock ram = src.registry.create("pc.ram", 64L << 20, RamBlock.Backing.ANONYMOUS);
            Workload.fill(ram, 9);
            src.service.addDeviceStateHandler(new Handler(null, null));
            dst.service.addDeviceStateHandler(new Handler(inPackage, streamTask));
            IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener.port()),
                    OutgoingOptions.defaults().withMode(MigrationMode.POSTCOPY).withMaxBandwidth(RATE));
            // after RUN: the stream thread has answered the PING and streams pages; it must have left real time
            IncomingMigration in = Await.until("the accepted migration", Duration.ofSeconds(10),
                    () -> listener.migrations().isEmpty() ? null : listener.migrations().get(0), java.util.Objects::nonNull);
            Await.until("postcopy streaming on the destination", Duration.ofSeconds(20),
                    () -> in.state() == MigrationState.POSTCOPY && in.progress().postcopyPageBytes() > (1 << 20)
                            || in.state().isFinal());
            assertThat(in.state()).as("the destination still streams (the source is paced at %d MiB/s)", RATE >> 20)
                    .isEqualTo(MigrationState.POSTCOPY);
            afterSwitch.set(Endpoint.policyAndNice(Path.of(streamTask.get())));
            assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        }
        assertThat(inPackage.get()).as("the device section was loaded").isNotNull();
        assertThat(inPackage.get()[0]).as("the stream thread's policy in the package (1 = SCHED_FIFO)").isEqualTo(SCHED_FIFO);
        assertThat(afterSwitch.get()).as("the stream thread after the switch (%s)", streamTask.get()).isNotNull();
        assertThat(afterSwitch.get()[0]).as("its policy after the switch (0 = SCHED_OTHER)").isEqualTo(SCHED_OTHER);
        assertThat(afterSwitch.get()[1]).as("its nice value after the switch (no guest faults: its normal weight)").isZero();
    }

    /** One small section; on the destination it notes the calling thread's scheduling and its /proc task path. */
    record Handler(AtomicReference<int[]> seen, AtomicReference<String> task) implements DeviceStateHandler {
        @Override
        public String idstr() {
            return "test/switch";
        }

        @Override
        public void save(OutputStream out) throws IOException {
            out.write(new byte[] {1, 2, 3, 4});
        }

        @Override
        public void load(InputStream in, int versionId) throws IOException {
            in.readAllBytes();
            String self = Files.readSymbolicLink(Path.of("/proc/thread-self")).toString();     // "PID/task/TID"
            task.set("/proc/" + self);
            seen.set(Endpoint.policyAndNice(Path.of(task.get())));
        }
    }
}
