package io.postcopy.workload.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.testkit.Await;
import io.postcopy.workload.AccessPattern;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The DS component driven directly, on a registry of its own. */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class WorkloadServiceComponentTest {
    final RamBlockRegistry registry = RamBlocks.newRegistry();
    final WorkloadServiceComponent service = new WorkloadServiceComponent(registry);
    final WorkloadOptions writer = WorkloadOptions.builder().threads(2).writeFraction(1).build();

    @AfterEach
    void tearDown() {
        service.deactivate();
        registry.removeAll();
    }

    @Test
    void startsListsVerifiesAndStopsByBlockName() throws Exception {
        registry.create("a", 64 * 4096, RamBlock.Backing.ANONYMOUS);
        registry.create("b", 64 * 4096, RamBlock.Backing.MEMFD);
        Workload a = service.start("a", writer);
        Workload b = service.start("b", WorkloadOptions.builder().pattern(AccessPattern.SEQUENTIAL).build());
        assertThat(service.list()).containsOnlyKeys("a", "b");
        assertThat(service.get("a")).isSameAs(a);
        assertThatThrownBy(() -> service.start("a", writer)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("already runs");
        assertThatThrownBy(() -> service.start("nope", writer)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("nope");

        Await.until("500 writes", Duration.ofSeconds(10), () -> a.writes() >= 500);
        // verify pauses the running writer for the check, then lets it go on
        assertThat(service.verify("a").ok()).isTrue();
        assertThat(a.isPaused()).isFalse();
        long w = a.writes();
        Await.until("a write after verify", Duration.ofSeconds(10), () -> a.writes() != w);

        assertThat(service.stop("a")).isTrue();
        assertThat(a.isRunning()).isFalse();
        assertThat(service.stop("a")).isFalse();
        assertThat(service.list()).containsOnlyKeys("b");
        assertThat(b.isRunning()).isTrue();
        service.deactivate();
        assertThat(b.isRunning()).isFalse();
        assertThat(service.list()).isEmpty();
    }

    @Test
    void removingABlockIsRefusedWhileItsWorkloadRunsAndStopsItWhenForced() throws Exception {
        registry.create("gone", 256 * 4096, RamBlock.Backing.ANONYMOUS);
        Workload w = service.start("gone", writer);
        Await.until("100 writes", Duration.ofSeconds(10), () -> w.writes() >= 100);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> registry.remove("gone"))
                .isInstanceOf(io.postcopy.ramblock.RamBlockInUseException.class)
                .hasMessage("RAM block \"gone\" is in use by workload on gone");
        assertThat(w.isRunning()).isTrue();
        long before = w.writes();
        registry.remove("gone", java.time.Duration.ofSeconds(10)); // unmaps: a still-running thread would crash the JVM
        assertThat(before).isPositive();
        assertThat(w.isRunning()).isFalse();
        assertThat(w.failure()).isNull();
        assertThat(service.list()).isEmpty();
    }

    @Test
    void anEndedWorkloadMayBeReplaced() throws Exception {
        registry.create("c", 16 * 4096, RamBlock.Backing.ANONYMOUS);
        Workload first = service.start("c", WorkloadOptions.builder().accessesPerThread(10).build());
        assertThat(first.awaitTermination(5, TimeUnit.SECONDS)).isTrue();
        Workload second = service.start("c", writer);
        assertThat(service.get("c")).isSameAs(second);
    }
}
