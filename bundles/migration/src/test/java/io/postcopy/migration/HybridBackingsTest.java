package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Hybrid migrations of the source block kinds a management server gives its guests besides private anonymous
 * memory: a memfd (shmem, shared mapping) and hugetlbfs. Precopy tracks their dirty pages with userfaultfd
 * write-protect as for anonymous memory; the pages written after they were sent must become discards, and
 * every page must end equal.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class HybridBackingsTest {
    static final long SIZE = 64L << 20;

    final Endpoint src = new Endpoint(), dst = new Endpoint();
    Workload writer;
    final AtomicReference<Workload> reader = new AtomicReference<>();
    long oldPool = -1;

    @AfterEach
    void close() throws IOException {
        if (writer != null) writer.stop();
        Workload r = reader.get();
        if (r != null) r.stop();
        src.close();
        dst.close();
        if (oldPool >= 0) Files.writeString(HugePageMigrationTest.NR, Long.toString(oldPool));
    }

    OutgoingMigration hybrid(RamBlock ram) throws Exception {
        Workload.fill(ram, 31);
        writer = Workloads.start(ram, WorkloadOptions.builder().threads(1).writeFraction(1.0).contentSeed(31)
                .randomSeed(9).build());
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().onRun(() -> reader.set(
                Workloads.start(dst.registry.byName(ram.idstr()), WorkloadOptions.builder().checkReads(true).randomSeed(4).build()))));
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()),
                OutgoingOptions.defaults().withMode(MigrationMode.HYBRID).withPostcopyAfter(Duration.ofMillis(600))
                        .withGuest(GuestControl.of(writer::pause, writer::resume)));
        assertThat(out.awaitCompletion(Duration.ofSeconds(60))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = l.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
        RamBlock d = dst.registry.byName(ram.idstr());
        Workload r = Endpoint.awaitGuest(reader);      // a migration that converged in precopy can end first
        assertThat(r).as("destination guest resumed at RUN").isNotNull();
        r.stop();
        assertThat(r.failure()).isNull();
        assertThat(r.readMismatches()).isZero();
        assertThat(writer.writes()).as("the source guest wrote during precopy").isGreaterThan(0);
        assertThat(Endpoint.mismatchedPages(ram, d)).as("pages differing between source and destination").isZero();
        assertThat(Workload.verify(d).ok()).isTrue();
        MigrationProgress p = out.progress();
        System.out.printf("%s hybrid: %d iterations, %d discard ranges, %d requests, %d pages%n", ram.backing(),
                p.iterations(), p.discardRanges(), p.requests(), p.pages());
        assertThat(p.iterations()).as("precopy passes").isGreaterThan(0);
        assertThat(p.discardRanges()).as("pages re-dirtied after they were sent become discards").isGreaterThan(0);
        assertThat(in.progress().discardRanges()).isEqualTo(p.discardRanges());
        return out;
    }

    @Test
    void memfdBlock() throws Exception {
        hybrid(src.registry.create("pc.ram", SIZE, RamBlock.Backing.MEMFD));
    }

    @Test
    void hugetlbBlock() throws Exception {
        long huge = io.postcopy.uffd.NativeMemory.hugePageSize();
        Assumptions.assumeTrue(huge == 2 << 20, "no 2 MiB huge pages");
        long pages = 2 * (SIZE / huge) + 4;
        try {
            long old = Long.parseLong(Files.readString(HugePageMigrationTest.NR).trim());
            Files.writeString(HugePageMigrationTest.NR, Long.toString(old + pages));
            oldPool = old;
        } catch (IOException | NumberFormatException e) {
            System.err.println("*** HYBRID HUGETLB TEST SKIPPED: cannot raise " + HugePageMigrationTest.NR + ": " + e);
            Assumptions.abort("cannot reserve huge pages: " + e);
        }
        if (io.postcopy.uffd.NativeMemory.hugePagesFree() < pages) {
            System.err.println("*** HYBRID HUGETLB TEST SKIPPED: only " + io.postcopy.uffd.NativeMemory.hugePagesFree() + " huge pages free");
            Assumptions.abort("not enough huge pages");
        }
        hybrid(src.registry.create("mem0", SIZE, RamBlock.Backing.HUGETLB));
    }
}
