package io.postcopy.backend.hugepage;

import static io.postcopy.backend.hugepage.HugeGuest.PAGE;
import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.backend.anon.standalone.AnonBackends;
import io.postcopy.backend.hugepage.internal.HugePagePlacementBackend;
import io.postcopy.fault.BackendInfo;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.test.CountingBackend;
import io.postcopy.fault.test.RecordingRequester;
import io.postcopy.fault.test.TestFaultServices;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.testkit.SourceImage;
import io.postcopy.uffd.NativeMemory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The anon and hugepage backends side by side on an anonymous and a hugetlb block while a fault storm runs;
 * the hugepage backend is removed (once in the middle of a huge page being gathered, once between huge pages)
 * and a fresh instance added back later, as a bundle restart does. Placements for the hugetlb block wait for
 * it; the anon block carries on; no page is lost, none is wrong.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HotSwapTest {
    static final long BLOCK = 32L << 20;
    static HugeGuest.Reservation reservation;
    static long huge;

    @BeforeAll
    static void reserve() {
        reservation = HugeGuest.Reservation.reserve(BLOCK / NativeMemory.hugePageSize() + 2);
        huge = NativeMemory.hugePageSize();
    }

    @AfterAll
    static void restore() {
        if (reservation != null) reservation.close();
    }

    @Test
    void hugepageBackendRemovedAndReaddedMidStreamLosesNothing() throws Exception {
        RamBlockRegistry registry = RamBlocks.newRegistry();
        io.postcopy.fault.standalone.StandaloneFaultService service = TestFaultServices.newService(registry);
        CountingBackend anon = new CountingBackend(AnonBackends.newBackend());
        List<CountingBackend> hugeInstances = new CopyOnWriteArrayList<>(List.of(new CountingBackend(new HugePagePlacementBackend())));
        service.addBackend(anon, 0);
        service.addBackend(hugeInstances.get(0), 100);
        RamBlock a = registry.create("pc.ram", BLOCK, RamBlock.Backing.ANONYMOUS);
        RamBlock h = registry.create("pc.huge", BLOCK, RamBlock.Backing.HUGETLB);
        long unitA = 16 * PAGE;
        long imageA = SourceImage.create(BLOCK, unitA, 21), imageH = SourceImage.create(BLOCK, huge, 22);
        RecordingRequester requests = new RecordingRequester(n -> n.equals("pc.huge") ? huge : PAGE);
        IncomingPostcopy in = service.create("swap", List.of(a, h), requests);
        HugeGuest.Stream streamA = new HugeGuest.Stream(in, a, imageA, unitA), streamH = new HugeGuest.Stream(in, h, imageH, huge);
        List<Long> waitedMillis = new ArrayList<>();
        List<String> whileRemoved = new ArrayList<>();
        try {
            in.advise();
            in.listen();
            in.run();
            Storm storm = new Storm(in, requests, List.of(streamA, streamH));
            storm.start(4, 150);
            storm.feed(16, 20, step -> {
                if (step == 5) {
                    // in the middle of a huge page: half of its target pages gathered by the instance going away
                    synchronized (streamH) {
                        long u = h.usedLength() / huge - 1, base = u * huge;   // the last one: the feeder is far from it
                        for (long o = base; o < base + huge / 2; o += PAGE) in.placePages(h, o, imageH + o, PAGE);
                        long t0 = System.nanoTime();
                        swap(service, hugeInstances, whileRemoved);
                        for (long o = base + huge / 2; o < base + huge; o += PAGE) in.placePages(h, o, imageH + o, PAGE);
                        waitedMillis.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
                    }
                }
                if (step == 10) {
                    // between huge pages: the next placement on the hugetlb block waits, the anon block does not
                    // measured from the removal: any hugetlb placement (ours, or the source's holding the stream)
                    // can only finish once the backend is back
                    long t0 = System.nanoTime();
                    swap(service, hugeInstances, whileRemoved);
                    in.placePages(a, a.usedLength() - PAGE, imageA + a.usedLength() - PAGE, PAGE);
                    assertThat(service.backends()).as("the anon block was placed before the hugepage backend came back")
                            .extracting(BackendInfo::name).containsExactly("anon");
                    synchronized (streamH) {
                        long last = h.usedLength() - 2 * huge;
                        in.placePages(h, last, imageH + last, huge);
                        waitedMillis.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
                    }
                }
            });
            long alive = storm.finish(30_000);

            FaultStatistics st = in.statistics();
            System.out.println("hot swap: " + st.faults() + " faults, " + st.requests() + " requests, raced " + st.raced()
                    + ", hugetlb placements waited " + waitedMillis + " ms, anon calls " + anon.calls.get()
                    + ", hugepage instances' calls " + hugeInstances.stream().map(c -> c.calls.get()).toList());
            assertThat(storm.sourceError.get()).as("source placements").isNull();
            assertThat(alive).as("readers still blocked (lost wakeups)").isZero();
            assertThat(storm.mismatches.get()).as("target pages read with wrong content").isZero();
            assertThat(in.failure()).isEmpty();
            assertThat(in.complete()).isTrue();
            assertThat(NativeMemory.nativeCompare(a.hostAddress(), imageA, BLOCK)).as("every byte of the anon block").isZero();
            assertThat(NativeMemory.nativeCompare(h.hostAddress(), imageH, BLOCK)).as("every byte of the hugetlb block").isZero();
            assertThat(st.bytesPlaced()).as("no page placed twice").isEqualTo(2 * BLOCK);
            assertThat(st.faults()).isEqualTo(st.requests() + st.dedupReceived() + st.dedupRequested());
            assertThat(requests.badLength.get()).isZero();
            assertThat(requests.maxPerPage()).isEqualTo(1);
            assertThat(st.blocks()).allSatisfy(b -> assertThat(b.faults()).as(b.idstr() + " faults").isPositive());
            assertThat(whileRemoved).as("backends while the hugepage backend was away")
                    .containsOnly("anon:0:[pc.ram]");
            assertThat(waitedMillis).as("hugetlb placements waited for the backend to come back")
                    .hasSize(2).allSatisfy(ms -> assertThat(ms).isGreaterThanOrEqualTo(250));
            assertThat(hugeInstances).hasSize(3).allSatisfy(c -> assertThat(c.calls.get()).isPositive());
            assertThat(anon.calls.get()).isPositive();
            assertThat(service.backends()).extracting(i -> i.name() + ":" + i.ranking() + ":" + i.blocksInUse())
                    .containsExactly("hugepage:100:[pc.huge]", "anon:0:[pc.ram]");
            assertThat(in.cleanup().totalBytes()).isZero();
        } finally {
            in.cleanup();
            registry.removeAll();
            NativeMemory.free(imageA);
            NativeMemory.free(imageH);
        }
    }

    /** Removes the current hugepage backend now and adds a fresh instance 300 ms later from another thread. */
    private static void swap(io.postcopy.fault.standalone.StandaloneFaultService service, List<CountingBackend> instances, List<String> whileRemoved) {
        service.removeBackend(instances.get(instances.size() - 1));
        for (BackendInfo i : service.backends()) whileRemoved.add(i.name() + ":" + i.ranking() + ":" + i.blocksInUse());
        CountingBackend next = new CountingBackend(new HugePagePlacementBackend());
        instances.add(next);
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(300);
            } catch (InterruptedException e) {
                return;
            }
            service.addBackend(next, 100);
        }, "re-add-hugepage");
        t.setDaemon(true);
        t.start();
    }
}
