package io.postcopy.backend.hugepage;

import static io.postcopy.backend.hugepage.HugeGuest.PAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.backend.anon.standalone.AnonBackends;
import io.postcopy.backend.hugepage.internal.HugePagePlacementBackend;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.IncomingState;
import io.postcopy.fault.PostcopyException;
import io.postcopy.fault.test.RecordingRequester;
import io.postcopy.fault.test.TestFaultServices;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.testkit.SourceImage;
import io.postcopy.uffd.NativeMemory;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A hugetlb block migrated through the hugepage backend on the real kernel: whole huge pages, every byte checked. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HugePageBackendTest {
    static final long BLOCK = 32L << 20;
    static HugeGuest.Reservation reservation;
    static long huge;

    @BeforeAll
    static void reserve() {
        // the block, its temporary page, and one spare
        reservation = HugeGuest.Reservation.reserve(BLOCK / NativeMemory.hugePageSize() + 2);
        huge = NativeMemory.hugePageSize();
    }

    @AfterAll
    static void restore() {
        if (reservation != null) reservation.close();
    }

    @Test
    void supportsOnlyHugetlbBlocksAndOutranksAnon() {
        RamBlockRegistry registry = RamBlocks.newRegistry();
        RamBlock h = registry.create("h", 2 * huge, RamBlock.Backing.HUGETLB);
        RamBlock a = registry.create("a", 16 * PAGE, RamBlock.Backing.ANONYMOUS);
        RamBlock m = registry.create("m", 16 * PAGE, RamBlock.Backing.MEMFD);
        try {
            HugePagePlacementBackend b = new HugePagePlacementBackend();
            assertThat(b.supports(h)).isTrue();
            assertThat(b.supports(a)).isFalse();
            assertThat(b.supports(m)).isFalse();
            assertThat(AnonBackends.newBackend().supports(h)).isFalse();
            io.postcopy.fault.standalone.StandaloneFaultService service = TestFaultServices.newService(registry);
            service.addBackend(AnonBackends.newBackend(), 0);
            service.addBackend(b, 100);
            IncomingPostcopy in = service.create("kinds", List.of(h, a), new RecordingRequester(n -> n.equals("h") ? huge : PAGE));
            try {
                assertThat(service.backends()).extracting(i -> i.name() + ":" + i.ranking() + ":" + i.blocksInUse())
                        .containsExactly("hugepage:100:[h]", "anon:0:[a]");
            } finally {
                in.cleanup();
            }
        } finally {
            registry.removeAll();
        }
    }

    @Test
    void hugetlbBlockMigratesUnderAFaultStormInWholeHugePages() throws Exception {
        RamBlockRegistry registry = RamBlocks.newRegistry();
        io.postcopy.fault.standalone.StandaloneFaultService service = TestFaultServices.newService(registry);
        service.addBackend(AnonBackends.newBackend(), 0);
        service.addBackend(new HugePagePlacementBackend(), 100);
        RamBlock ram = registry.create("pc.ram", BLOCK, RamBlock.Backing.HUGETLB);
        long image = SourceImage.create(BLOCK, huge, 7);
        RecordingRequester requests = new RecordingRequester(huge);
        IncomingPostcopy in = service.create("huge-storm", List.of(ram), requests);
        try {
            in.advise();
            in.listen();
            in.run();
            Storm storm = new Storm(in, requests, List.of(new HugeGuest.Stream(in, ram, image, huge)));
            storm.start(8, 150);
            storm.feed(16, 20, step -> {});
            long alive = storm.finish(30_000);

            FaultStatistics st = in.statistics();
            System.out.println("hugetlb storm: " + st.faults() + " faults, " + st.requests() + " requests, "
                    + st.dedupReceived() + "+" + st.dedupRequested() + " de-duplicated, latency " + st.latency()
                    + ", raced " + st.raced() + ", placed " + st.pagesPlaced() + "+" + st.zeroPagesPlaced() + " huge pages");
            assertThat(storm.sourceError.get()).as("source placements").isNull();
            assertThat(alive).as("readers still blocked (lost wakeups)").isZero();
            assertThat(storm.mismatches.get()).as("target pages read with wrong content").isZero();
            assertThat(in.failure()).isEmpty();
            assertThat(requests.failure()).isNull();
            assertThat(in.complete()).isTrue();
            assertThat(NativeMemory.nativeCompare(ram.hostAddress(), image, BLOCK)).as("every byte of the block").isZero();
            assertThat(st.faults()).isPositive();
            assertThat(st.requests()).isPositive().isEqualTo(requests.count.get());
            assertThat(requests.badLength.get()).as("requests that were not one whole aligned huge page").isZero();
            assertThat(requests.maxPerPage()).as("each huge page requested at most once").isEqualTo(1);
            assertThat(st.faults()).isEqualTo(st.requests() + st.dedupReceived() + st.dedupRequested());
            assertThat(st.bytesPlaced()).as("each huge page made present exactly once").isEqualTo(BLOCK);
            assertThat(st.pagesPlaced() + st.zeroPagesPlaced()).isEqualTo(BLOCK / huge);
            assertThat(st.raced()).as("the stream resends pages the source already served: EEXIST").isPositive();
            assertThat(st.latency().count()).isPositive();
            assertThat(in.cleanup().totalBytes()).isZero();
            assertThat(in.state()).isEqualTo(IncomingState.END);
        } finally {
            in.cleanup();
            registry.removeAll();
            NativeMemory.free(image);
        }
    }

    /**
     * The protocol rules on a small block: a target page that does not continue the huge page being gathered
     * is refused and changes nothing; a huge page is present only once complete, with one copy; a whole zero
     * huge page; a resent huge page is an EEXIST race; a discard punches the hole.
     */
    @Test
    void targetPagesMustArriveInOrderAndAHugePageAppearsOnlyWhenComplete() throws Exception {
        RamBlockRegistry registry = RamBlocks.newRegistry();
        io.postcopy.fault.standalone.StandaloneFaultService service = TestFaultServices.newService(registry);
        service.addBackend(new HugePagePlacementBackend(), 100);
        RamBlock ram = registry.create("small", 3 * huge, RamBlock.Backing.HUGETLB);
        long image = SourceImage.create(3 * huge, huge, 11);
        long zeros = NativeMemory.allocate(huge);
        NativeMemory.fill(zeros, huge, (byte) 0);
        RecordingRequester requests = new RecordingRequester(huge);
        IncomingPostcopy in = service.create("order", List.of(ram), requests);
        try {
            in.advise();
            // precopy wrote huge page 2; the source then discards it (dirtied again): the hole is punched
            in.loadPrecopyPages(ram, 2 * huge, image + 2 * huge, huge);
            assertThat(NativeMemory.nativeCompare(ram.hostAddress() + 2 * huge, image + 2 * huge, huge)).isZero();
            in.discard("small", 2 * huge, huge);
            assertThat(in.missing().totalBytes()).isEqualTo(3 * huge);
            in.listen();
            in.run();

            assertThatThrownBy(() -> in.placePages(ram, PAGE, image + PAGE, PAGE))
                    .isInstanceOf(PostcopyException.class).hasMessageContaining("does not continue");
            assertThat(in.placePages(ram, 0, image, 255 * PAGE)).as("half a huge page is not placed yet").isZero();
            assertThat(in.placeZeroPages(ram, 255 * PAGE, PAGE)).as("255 % 7 == 3: a zero target page").isZero();
            assertThatThrownBy(() -> in.placePages(ram, 300 * PAGE, image + 300 * PAGE, PAGE))
                    .as("a gap").isInstanceOf(PostcopyException.class).hasMessageContaining("1048576 bytes so far");
            assertThatThrownBy(() -> in.placePages(ram, huge, image + huge, huge))
                    .as("another huge page before this one is complete").isInstanceOf(PostcopyException.class);
            assertThat(in.missing().totalBytes()).isEqualTo(3 * huge);
            // the refused calls changed nothing: the rest continues the same temporary page
            for (long o = 256 * PAGE; o < huge; o += PAGE) {
                long n = SourceImage.isZeroPage(o, huge) ? in.placeZeroPages(ram, o, PAGE) : in.placePages(ram, o, image + o, PAGE);
                assertThat(n).isEqualTo(o + PAGE == huge ? huge : 0);
            }
            assertThat(NativeMemory.nativeCompare(ram.hostAddress(), image, huge)).isZero();
            // huge page 1 is all zero: one zero run of the whole page (no ZEROPAGE on hugetlb)
            assertThat(in.placeZeroPages(ram, huge, huge)).isEqualTo(huge);
            assertThat(NativeMemory.nativeCompare(ram.hostAddress() + huge, zeros, huge)).isZero();
            // a resent huge page: EEXIST, counted as a race, nothing overwritten
            assertThat(in.placePages(ram, huge, image, huge)).isZero();
            assertThat(in.statistics().raced()).isEqualTo(1);
            assertThat(NativeMemory.nativeCompare(ram.hostAddress() + huge, zeros, huge)).isZero();
            // huge page 2 (discarded) is missing again and comes as a run from an unaligned source address
            long unaligned = NativeMemory.allocate(huge + 64);
            NativeMemory.copy(image + 2 * huge, unaligned + 8, huge);
            assertThat(in.placePages(ram, 2 * huge, unaligned + 8, huge)).isEqualTo(huge);
            NativeMemory.free(unaligned);
            assertThat(NativeMemory.nativeCompare(ram.hostAddress() + 2 * huge, image + 2 * huge, huge)).isZero();
            assertThat(in.complete()).isTrue();
            assertThat(in.statistics().bytesPlaced()).isEqualTo(3 * huge);
            assertThat(requests.count.get()).as("nobody faulted").isZero();
        } finally {
            in.cleanup();
            registry.removeAll();
            NativeMemory.free(image);
            NativeMemory.free(zeros);
        }
    }
}
