package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.fault.FaultStatistics;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A hugetlb block (2 MiB pages): MEM_SIZE carries the page size, the destination creates a hugetlb block and
 * the hugepage backend places whole huge pages; requests ask for whole huge pages. Needs huge pages: the test
 * raises /proc/sys/vm/nr_hugepages for its run and puts the old value back (skipped, loudly, if it cannot).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HugePageMigrationTest {
    static final Path NR = Path.of("/proc/sys/vm/nr_hugepages");
    static final long SIZE = 64L << 20;

    final Endpoint src = new Endpoint(), dst = new Endpoint();
    final AtomicReference<Workload> reader = new AtomicReference<>();
    long oldPool = -1;

    @AfterEach
    void close() throws IOException {
        Workload w = reader.get();
        if (w != null) w.stop();
        src.close();
        dst.close();
        if (oldPool >= 0) Files.writeString(NR, Long.toString(oldPool));
    }

    void reserve(long pages) {
        long huge = NativeMemory.hugePageSize();
        Assumptions.assumeTrue(huge == 2 << 20, "no 2 MiB huge pages");
        try {
            long old = Long.parseLong(Files.readString(NR).trim());
            Files.writeString(NR, Long.toString(old + pages));
            oldPool = old;
        } catch (IOException | NumberFormatException e) {
            System.err.println("*** HUGEPAGE MIGRATION TEST SKIPPED: cannot raise " + NR + ": " + e);
            Assumptions.abort("cannot reserve huge pages: " + e);
        }
        if (NativeMemory.hugePagesFree() < pages) {
            System.err.println("*** HUGEPAGE MIGRATION TEST SKIPPED: only " + NativeMemory.hugePagesFree() + " huge pages free");
            Assumptions.abort("not enough huge pages");
        }
    }

    @Test
    void hugetlbBlockPurePostcopy() throws Exception {
        long hugePages = SIZE / (2 << 20);
        reserve(2 * hugePages + 4);    // source block, destination block, temporary pages
        RamBlock ram = src.registry.create("mem0", SIZE, RamBlock.Backing.HUGETLB);
        Workload.fill(ram, 21);
        ram.discard(8L << 20, 4L << 20);     // two whole zero huge pages
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().onRun(() -> reader.set(
                Workloads.start(dst.registry.byName("mem0"), WorkloadOptions.builder().checkReads(true).build()))));
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()), OutgoingOptions.defaults());
        assertThat(out.awaitCompletion(Duration.ofSeconds(40))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = l.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
        RamBlock d = dst.registry.byName("mem0");
        assertThat(d.backing()).isEqualTo(RamBlock.Backing.HUGETLB);
        assertThat(d.pageSize()).isEqualTo(2 << 20);
        Workload w = Endpoint.awaitGuest(reader);
        assertThat(w).as("destination guest resumed at RUN").isNotNull();
        w.stop();
        assertThat(w.readMismatches()).isZero();
        assertThat(Endpoint.mismatchedPages(ram, d)).isZero();
        FaultStatistics st = in.statistics().orElseThrow();
        System.out.printf("hugetlb: %d requests, postcopy %.1f ms, %.2f GB/s%n", st.requests(),
                out.progress().postcopyNanos() / 1e6, out.progress().throughputGBps());
        assertThat(st.requests()).isGreaterThan(0);
        assertThat(out.progress().zeroPages()).isGreaterThanOrEqualTo(2 * 512);
    }
}
