package io.postcopy.workload;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Each pattern touches the pages it should, in real memory. */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class PatternTest {
    final Blocks blocks = new Blocks();

    @AfterEach
    void tearDown() {
        blocks.close();
    }

    private Workload runToEnd(RamBlock b, WorkloadOptions o) throws InterruptedException {
        Workload w = Workloads.start(b, o);
        assertThat(w.awaitTermination(15, TimeUnit.SECONDS)).isTrue();
        w.stop();
        assertThat(w.failure()).isNull();
        return w;
    }

    @Test
    void sequentialThreadsEachWalkTheirOwnRunFromTheirStart() throws Exception {
        RamBlock b = blocks.create("seq", 256);
        Workload w = runToEnd(b, WorkloadOptions.builder().pattern(AccessPattern.SEQUENTIAL).threads(2)
                .writeFraction(1).accessesPerThread(50).build());
        assertThat(w.writes()).isEqualTo(100);
        assertThat(w.reads()).isZero();
        assertThat(w.pagesTouched()).isEqualTo(100);
        for (long p = 0; p < 256; p++) {
            boolean walked = p < 50 || (p >= 128 && p < 178);
            assertThat(blocks.isZero(b, p)).as("page %d", p).isEqualTo(!walked);
        }
        VerifyResult r = Workload.verify(b);
        assertThat(r).isEqualTo(new VerifyResult(256, 156, 0, 100, 0, -1));
    }

    @Test
    void sequentialWrapsAroundTheBlock() throws Exception {
        RamBlock b = blocks.create("wrap", 10);
        Workload w = runToEnd(b, WorkloadOptions.builder().pattern(AccessPattern.SEQUENTIAL).accessesPerThread(25)
                .build());
        assertThat(w.reads()).isEqualTo(25);
        assertThat(w.pagesTouched()).isEqualTo(10);
    }

    @Test
    void uniformSpreadsOverTheWholeBlock() throws Exception {
        RamBlock b = blocks.create("uniform", 4096);
        Workload w = runToEnd(b, WorkloadOptions.builder().pattern(AccessPattern.UNIFORM).writeFraction(1)
                .accessesPerThread(4096).randomSeed(11).build());
        // n draws over n pages: about n(1 - 1/e) = 2589 distinct pages, spread evenly
        long written = Workload.verify(b).writtenPages();
        assertThat(written).isEqualTo(w.pagesTouched()).isBetween(2450L, 2730L);
        long lowHalf = 0;
        for (long p = 0; p < 2048; p++) if (!blocks.isZero(b, p)) lowHalf++;
        assertThat((double) lowHalf / written).isBetween(0.45, 0.55);
    }

    @Test
    void hotSetConcentratesAccessesOnItsPages() throws Exception {
        RamBlock b = blocks.create("hot", 4000);
        Workload w = runToEnd(b, WorkloadOptions.builder().pattern(AccessPattern.HOTSET).hotSet(0.05, 0.9)
                .writeFraction(1).threads(2).accessesPerThread(1000).randomSeed(3).build());
        assertThat(w.writes()).isEqualTo(2000);
        long hotPages = 200, hotWritten = 0, coldWritten = 0;
        for (long p = 0; p < 4000; p++) {
            if (blocks.isZero(b, p)) continue;
            if (p < hotPages) hotWritten++;
            else coldWritten++;
        }
        // ~1800 writes over 200 hot pages hit nearly all of them; ~200 over 3800 cold pages hit ~5 %
        assertThat((double) hotWritten / hotPages).isGreaterThan(0.95);
        assertThat((double) coldWritten / (4000 - hotPages)).isBetween(0.02, 0.08);
    }

    @Test
    void readOnlyWorkloadLeavesMemoryUnchangedAndChecksWhatItReads() throws Exception {
        RamBlock b = blocks.create("ro", 512);
        Workload.fill(b, 21);
        byte[] before = PageDigest.of(b);
        Workload w = runToEnd(b, WorkloadOptions.builder().threads(2).checkReads(true)
                .duration(Duration.ofMillis(300)).build());
        assertThat(w.reads()).isGreaterThan(1000);
        assertThat(w.writes()).isZero();
        assertThat(w.readMismatches()).isZero();
        assertThat(w.pagesTouched()).isEqualTo(512);
        assertThat(PageDigest.of(b)).isEqualTo(before);
    }

    @Test
    void checkedReadsCatchACorruptPage() throws Exception {
        RamBlock b = blocks.create("bad", 64);
        Workload.fill(b, 2);
        byte[] page = blocks.bytes(b, 40);
        page[4000] ^= 0x10;
        blocks.put(b, 40, page);
        Workload w = runToEnd(b, WorkloadOptions.builder().pattern(AccessPattern.SEQUENTIAL).checkReads(true)
                .accessesPerThread(64).build());
        assertThat(w.readMismatches()).isEqualTo(1);
        assertThat(w.firstReadMismatch()).isEqualTo(40);
    }

    @Test
    void concurrentReadersAndWritersOfFewPagesNeverSeeATornPage() throws Exception {
        RamBlock b = blocks.create("contended", 8);
        Workload w = runToEnd(b, WorkloadOptions.builder().threads(4).writeFraction(0.5).checkReads(true)
                .duration(Duration.ofMillis(400)).build());
        assertThat(w.writes()).isGreaterThan(500);
        assertThat(w.reads()).isGreaterThan(500);
        assertThat(w.readMismatches()).isZero();
        assertThat(Workload.verify(b).ok()).isTrue();
    }
}
