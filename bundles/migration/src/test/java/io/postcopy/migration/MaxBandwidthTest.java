package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
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
 * {@code maxBandwidth} paces the background pages: the main stream never runs ahead of it (a lower bound on the
 * migration's duration, which pacing guarantees whatever the machine's speed), while requested pages still go.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MaxBandwidthTest {
    static final long SIZE = 32L << 20, RATE = 64L << 20;

    final Endpoint src = new Endpoint(), dst = new Endpoint();
    final AtomicReference<Workload> reader = new AtomicReference<>();

    @AfterEach
    void close() {
        Workload r = reader.get();
        if (r != null) r.stop();
        src.close();
        dst.close();
    }

    @Test
    void backgroundPagesAreCappedAndRequestsStillServed() throws Exception {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 5);        // no zero pages: every page is a 4 KiB PAGE record
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().onRun(() -> reader.set(
                Workloads.start(dst.registry.byName("pc.ram"), WorkloadOptions.builder().checkReads(true).randomSeed(2).build()))));
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()),
                OutgoingOptions.defaults().withMaxBandwidth(RATE));
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = l.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
        Workload r = Endpoint.awaitGuest(reader);
        assertThat(r).as("destination guest resumed at RUN").isNotNull();
        r.stop();
        assertThat(r.readMismatches()).isZero();
        assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();

        MigrationProgress p = out.progress();
        long requested = p.requestedPages();
        long background = (p.pages() - requested) * 4096;
        double seconds = p.postcopyNanos() / 1e9;
        System.out.printf("max-bandwidth %d MiB/s: %d background MiB in %.3f s (%.1f MiB/s), %d requested pages%n",
                RATE >> 20, background >> 20, seconds, background / seconds / (1 << 20), requested);
        assertThat(requested).as("requested pages are served while background pages are paced").isGreaterThan(0);
        // the pacer lets the stream run at most 1 ms ahead, and the package and headers count too
        assertThat(seconds).as("postcopy of %d background bytes at %d B/s", background, RATE)
                .isGreaterThanOrEqualTo((double) background / RATE - 0.05);
        assertThat(out.options().maxBandwidth()).isEqualTo(RATE);
    }

    @Test
    void negativeIsRefused() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> OutgoingOptions.defaults().withMaxBandwidth(-1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("maxBandwidth");
    }
}
