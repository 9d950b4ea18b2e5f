package io.postcopy.workload;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** fill(), verify() and the (page, generation) images the vCPUs write. */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class ContentTest {
    final Blocks blocks = new Blocks();

    @AfterEach
    void tearDown() {
        blocks.close();
    }

    @Test
    void freshBlockIsAllZero() {
        RamBlock b = blocks.create("fresh", 40);
        assertThat(Workload.verify(b)).isEqualTo(new VerifyResult(40, 40, 0, 0, 0, -1));
    }

    @Test
    void fillWritesGenerationZeroOfTheSeedToEveryPage() {
        RamBlock b = blocks.create("filled", 100);
        Workload.fill(b, 77);
        assertThat(Workload.verify(b)).isEqualTo(new VerifyResult(100, 0, 100, 0, 0, -1));
        assertThat(Workload.verify(b, 77).ok()).isTrue();
        VerifyResult wrongSeed = Workload.verify(b, 78);
        assertThat(wrongSeed.mismatched()).isEqualTo(100);
        assertThat(wrongSeed.firstMismatch()).isZero();
        // pages differ from each other: the page index is part of the image
        assertThat(blocks.bytes(b, 3)).isNotEqualTo(blocks.bytes(b, 4));
    }

    @Test
    void writtenPagesVerifyAndCorruptingOneByteIsReportedAtThatPage() throws Exception {
        RamBlock b = blocks.create("written", 256);
        Workload.fill(b, 5);
        try (Workload w = Workloads.start(b, WorkloadOptions.builder().threads(2).writeFraction(1).contentSeed(5)
                .accessesPerThread(2000).build())) {
            assertThat(w.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
            assertThat(w.failure()).isNull();
            assertThat(w.writes()).isEqualTo(4000);
        }
        VerifyResult before = Workload.verify(b, 5);
        assertThat(before.ok()).isTrue();
        assertThat(before.writtenPages()).isGreaterThan(200);
        assertThat(before.filledPages() + before.writtenPages()).isEqualTo(256);

        byte[] page = blocks.bytes(b, 137);
        page[1234] ^= 0x01;
        blocks.put(b, 137, page);
        VerifyResult after = Workload.verify(b);
        assertThat(after.mismatched()).isEqualTo(1);
        assertThat(after.firstMismatch()).isEqualTo(137);
    }

    @Test
    void aPageHoldingAnotherPagesImageIsAMismatch() {
        RamBlock b = blocks.create("moved", 16);
        Workload.fill(b, 1);
        blocks.put(b, 9, blocks.bytes(b, 2));
        VerifyResult r = Workload.verify(b);
        assertThat(r.mismatched()).isEqualTo(1);
        assertThat(r.firstMismatch()).isEqualTo(9);
    }

    @Test
    void aPageWithOnlyItsGenerationWordChangedIsAMismatch() {
        RamBlock b = blocks.create("gen", 8);
        Workload.fill(b, 3);
        byte[] page = blocks.bytes(b, 6);
        page[0] = 1; // generation 1 claimed, words still those of generation 0
        blocks.put(b, 6, page);
        assertThat(Workload.verify(b).firstMismatch()).isEqualTo(6);
    }
}
