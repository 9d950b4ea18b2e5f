package io.postcopy.workload;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Every access is timed into the threads' histograms, merged on demand. */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class LatencyTest {
    final Blocks blocks = new Blocks();

    @AfterEach
    void tearDown() {
        blocks.close();
    }

    @Test
    void histogramHoldsOneValuePerAccess() throws Exception {
        RamBlock b = blocks.create("lat", 128);
        Workload w = Workloads.start(b, WorkloadOptions.builder().threads(2).writeFraction(0.5)
                .accessesPerThread(3000).stallThreshold(Duration.ofSeconds(1)).build());
        assertThat(w.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        LatencySummary l = w.latency();
        assertThat(l.count()).isEqualTo(6000).isEqualTo(w.reads() + w.writes());
        assertThat(l.p50Us()).isPositive();
        assertThat(l.p99Us()).isGreaterThanOrEqualTo(l.p50Us());
        assertThat(l.p999Us()).isGreaterThanOrEqualTo(l.p99Us());
        assertThat(l.maxUs()).isGreaterThanOrEqualTo(l.p999Us());
        assertThat(l.stalls()).isZero();
        assertThat(l.thresholdUs()).isEqualTo(1_000_000.0);
        // merging again adds nothing twice
        assertThat(w.latency().count()).isEqualTo(6000);
    }

    @Test
    void accessesAboveTheThresholdCountAsStalls() throws Exception {
        // every timed native copy takes well over 1 ns; none takes a second
        RamBlock b = blocks.create("stalls", 256);
        Workload w = Workloads.start(b, WorkloadOptions.builder().pattern(AccessPattern.SEQUENTIAL)
                .writeFraction(1).accessesPerThread(2000).stallThreshold(Duration.ofNanos(1)).build());
        assertThat(w.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        assertThat(w.stalls()).isEqualTo(2000);
        assertThat(w.latency().stalls()).isEqualTo(2000);
    }

    @Test
    void mergedCountMatchesAccessesWhilePaused() {
        RamBlock b = blocks.create("none", 4);
        try (Workload w = Workloads.start(b, WorkloadOptions.builder().build())) {
            w.pause();
            long n = w.reads();
            assertThat(w.latency().count()).isEqualTo(n);
        }
    }
}
