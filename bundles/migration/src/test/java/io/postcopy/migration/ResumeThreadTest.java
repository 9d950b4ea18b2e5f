package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.Workload;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The destination's thread that resumes the guest at RUN waits as an urgent thread (real time within the budget by
 * default: its wake-up ends the guest's downtime), but calls {@link GuestControl#resume()} at ordinary priority, so
 * the vCPU threads a resume starts do not inherit real time. Tests run as root, so real time is granted here and a
 * resume still at SCHED_FIFO would show.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ResumeThreadTest {
    static final int SCHED_OTHER = 0;

    @Test
    void theGuestIsResumedAtOrdinaryPriorityAndTheThreadsItStartsInheritNoRealTime() throws Exception {
        AtomicReference<int[]> resumer = new AtomicReference<>(), started = new AtomicReference<>();
        try (Endpoint src = new Endpoint(Map.of()); Endpoint dst = new Endpoint(Map.of())) {
            RamBlock ram = src.registry.create("pc.ram", 16L << 20, RamBlock.Backing.ANONYMOUS);
            Workload.fill(ram, 5);
            IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().onRun(() -> {
                resumer.set(policyAndNice());
                Thread vcpu = new Thread(() -> started.set(policyAndNice()), "vcpu-0");
                vcpu.start();
                try {
                    vcpu.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener.port()),
                    OutgoingOptions.defaults().withMode(MigrationMode.POSTCOPY));
            assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        }
        assertThat(resumer.get()).as("resume() was called").isNotNull();
        assertThat(resumer.get()[0]).as("the resuming thread's policy (0 = SCHED_OTHER, 1 = SCHED_FIFO)").isEqualTo(SCHED_OTHER);
        assertThat(resumer.get()[1]).as("the resuming thread's nice value").isZero();
        assertThat(started.get()).as("a thread started in resume() ran").isNotNull();
        assertThat(started.get()[0]).as("its policy").isEqualTo(SCHED_OTHER);
        assertThat(started.get()[1]).as("its nice value").isZero();
    }

    private static int[] policyAndNice() {
        return Endpoint.policyAndNice(Path.of("/proc/thread-self"));
    }
}
