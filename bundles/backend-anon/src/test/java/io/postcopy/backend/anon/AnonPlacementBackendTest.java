package io.postcopy.backend.anon;

import static io.postcopy.testkit.SourceImage.PAGE;
import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.backend.anon.internal.AnonPlacementBackend;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.test.PlacementRig;
import io.postcopy.fault.test.RecordingRequester;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.testkit.RequestLog;
import io.postcopy.testkit.SourceImage;
import io.postcopy.testkit.VcpuReader;
import io.postcopy.uffd.NativeMemory;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What the anon backend does to guest memory, through the fault service on the real kernel: a page already
 * present is an EEXIST race (counted, nothing overwritten, never requested); a discard drops precopy content
 * so that the page placed in postcopy is the one read. The fault service's own lifecycle is tested in the
 * fault bundle (IncomingLifecycleTest, FaultStormTest).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AnonPlacementBackendTest {
    PlacementRig rig;
    RamBlockRegistry registry;
    io.postcopy.fault.standalone.StandaloneFaultService service;
    RamBlock a;
    long image;

    @BeforeEach
    void setUp() {
        rig = new PlacementRig(new AnonPlacementBackend(), 64 * PAGE, 9);
        registry = rig.registry;
        service = rig.service;
        image = rig.image;
        a = rig.anonymousBlock("a", 64 * PAGE);
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    @Test
    void pagesAlreadyPresentNeverReachTheRequester() throws Exception {
        RecordingRequester requests = new RecordingRequester(PAGE);
        IncomingPostcopy in = service.create("m", List.of(a), requests);
        in.advise();
        in.listen();
        in.run();
        in.placePages(a, 0, image, 64 * PAGE);
        assertThat(in.placePages(a, 0, image, 64 * PAGE)).as("a second placement places nothing").isZero();
        assertThat(in.statistics().raced()).isEqualTo(64);
        VcpuReader r = VcpuReader.randomPages(a, 2000, 1).expect(image);
        r.start();
        r.join(10_000);
        assertThat(r.mismatches()).isZero();
        assertThat(in.statistics().faults()).isZero();
        assertThat(requests.count.get()).isZero();
        assertThat(in.complete()).isTrue();
        assertThat(in.cleanup().totalBytes()).isZero();
    }

    @Test
    void precopyPagesThenDiscardsThenPostcopyEndsWithTheRightContent() throws Exception {
        RecordingRequester requests = new RecordingRequester(PAGE);
        IncomingPostcopy in = service.create("m", List.of(a), requests);
        in.advise();
        in.loadPrecopyPages(a, 0, image, 64 * PAGE);
        // the source re-dirtied pages 5..9 after sending them: their old content must go
        long newer = SourceImage.create(64 * PAGE, 10);
        try {
            in.discard("a", 5 * PAGE, 5 * PAGE);
            in.listen();
            in.run();
            VcpuReader t = VcpuReader.range(a.hostAddress() + 7 * PAGE, PAGE).expect(newer + 7 * PAGE);
            t.start();
            RequestLog.Request req = requests.queue.poll(10, TimeUnit.SECONDS);
            assertThat(req).isEqualTo(new RequestLog.Request("a", 7 * PAGE, PAGE));
            in.placePages(a, 7 * PAGE, newer + 7 * PAGE, PAGE);
            t.join(5000);
            assertThat(t.mismatches()).isZero();
            assertThat(in.complete()).isFalse();
            for (long p = 5; p < 10; p++) if (p != 7) in.placePages(a, p * PAGE, newer + p * PAGE, PAGE);
            assertThat(in.complete()).isTrue();
            assertThat(NativeMemory.nativeCompare(a.hostAddress(), image, 5 * PAGE)).isZero();
            assertThat(NativeMemory.nativeCompare(a.hostAddress() + 5 * PAGE, newer + 5 * PAGE, 5 * PAGE)).isZero();
            assertThat(in.statistics().requests()).isEqualTo(1);
        } finally {
            NativeMemory.free(newer);
        }
    }

    /**
     * A batch of discards (every other page: 32 ranges in one call) drops exactly those pages' precopy content; a
     * batch with one range outside the block is refused before anything is dropped.
     */
    @Test
    void aBatchOfDiscardsDropsExactlyItsRangesAndABadOneDropsNothing() throws Exception {
        RecordingRequester requests = new RecordingRequester(PAGE);
        IncomingPostcopy in = service.create("m", List.of(a), requests);
        in.advise();
        in.loadPrecopyPages(a, 0, image, 64 * PAGE);
        long[] offsets = new long[33], lengths = new long[33];
        for (int i = 0; i < 32; i++) {
            offsets[i] = 2L * i * PAGE;
            lengths[i] = PAGE;
        }
        offsets[32] = 64 * PAGE;                                     // one page past the block
        lengths[32] = PAGE;
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> in.discard("a", offsets, lengths, 33))
                .isInstanceOf(io.postcopy.fault.PostcopyException.class).hasMessageContaining("offset " + 64 * PAGE);
        assertThat(NativeMemory.nativeCompare(a.hostAddress(), image, 64 * PAGE)).as("nothing dropped").isZero();
        in.discard("a", offsets, lengths, 32);
        assertThat(in.statistics().discards()).isEqualTo(32);
        in.listen();
        in.run();
        // the odd pages kept their precopy content: read, they fault on nothing and nothing is requested
        VcpuReader odd = VcpuReader.range(a.hostAddress() + PAGE, PAGE).expect(image + PAGE);
        odd.start();
        odd.join(5000);
        assertThat(odd.mismatches()).isZero();
        // every even page is missing again: each one places anew (none raced with content still present)
        for (int i = 0; i < 32; i++) assertThat(in.placePages(a, 2L * i * PAGE, image + 2L * i * PAGE, PAGE)).isEqualTo(PAGE);
        assertThat(in.complete()).isTrue();
        assertThat(requests.count.get()).isZero();
        assertThat(NativeMemory.nativeCompare(a.hostAddress(), image, 64 * PAGE)).isZero();
    }
}
