package io.postcopy.fault;

import static io.postcopy.testkit.SourceImage.PAGE;
import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.fault.test.CountingBackend;
import io.postcopy.fault.test.RecordingRequester;
import io.postcopy.fault.test.TestFaultServices;
import io.postcopy.fault.test.TestPlacementBackend;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.testkit.RequestLog;
import io.postcopy.testkit.SourceImage;
import io.postcopy.testkit.VcpuReader;
import io.postcopy.uffd.NativeMemory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Many threads fault on random pages while a feeder streams pages in the background and a "source" serves
 * requests first: the destination's whole postcopy path on the real kernel, through a backend that really
 * places pages; with hot swaps of a higher-ranked backend in the middle.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FaultStormTest {
    static final long PAGES = 16384;   // 64 MiB

    void storm(boolean hotSwap) throws Exception {
        RamBlockRegistry registry = RamBlocks.newRegistry();
        io.postcopy.fault.standalone.StandaloneFaultService service = TestFaultServices.newService(registry);
        CountingBackend low = new CountingBackend(new TestPlacementBackend(), "test"),
                high = new CountingBackend(new TestPlacementBackend(), "test-high");
        service.addBackend(low, 0);
        RamBlock ram = registry.create("pc.ram", PAGES * PAGE, RamBlock.Backing.ANONYMOUS);
        long image = SourceImage.create(PAGES * PAGE, 42);
        RecordingRequester requests = new RecordingRequester(PAGE);
        IncomingPostcopy in = service.create("storm", List.of(ram), requests);
        try {
            in.advise();
            in.listen();
            in.run();
            assertThat(in.state()).isEqualTo(IncomingState.RUNNING);

            AtomicLong mismatches = new AtomicLong();
            List<VcpuReader> readers = new ArrayList<>();
            for (int t = 0; t < 8; t++) readers.add(VcpuReader.randomPages(ram, 400, t).expect(image).countInto(mismatches));
            readers.forEach(Thread::start);

            AtomicBoolean stop = new AtomicBoolean();
            // the source: requested pages jump the queue
            Thread source = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        RequestLog.Request r = requests.queue.poll(10, TimeUnit.MILLISECONDS);
                        if (r != null) place(in, ram, image, r.offset(), PAGE);
                    }
                } catch (InterruptedException ignored) {
                    // done
                }
            });
            source.start();
            // the background stream: runs of 16 pages, slowly enough that readers fault on pages not yet sent
            for (long p = 0; p < PAGES; p += 16) {
                place(in, ram, image, p * PAGE, 16 * PAGE);
                if (p % 1024 == 0) {
                    Thread.sleep(5);
                    if (hotSwap && p % 4096 == 0) service.addBackend(high, 10);
                    if (hotSwap && p % 4096 == 2048) service.removeBackend(high);
                }
            }
            for (VcpuReader r : readers) r.join(30_000);
            stop.set(true);
            source.join();

            assertThat(mismatches.get()).as("pages read with wrong content").isZero();
            assertThat(in.complete()).isTrue();
            assertThat(NativeMemory.nativeCompare(ram.hostAddress(), image, PAGES * PAGE)).isZero();
            FaultStatistics st = in.statistics();
            System.out.println("storm(hotSwap=" + hotSwap + "): " + st.faults() + " faults, " + st.requests() + " requests, "
                    + st.dedupReceived() + "+" + st.dedupRequested() + " de-duplicated, latency " + st.latency() + ", raced " + st.raced()
                    + ", placements on high=" + high.calls.get() + " low=" + low.calls.get());
            assertThat(st.faults()).isPositive();
            assertThat(st.requests()).isPositive().isEqualTo(requests.count.get());
            assertThat(st.faults()).isEqualTo(st.requests() + st.dedupReceived() + st.dedupRequested());
            assertThat(requests.badLength.get()).as("requests that were not one whole aligned page").isZero();
            assertThat(requests.maxPerPage()).as("each page requested at most once").isEqualTo(1);
            assertThat(requests.withName.get()).as("the block is named once, then REQ_PAGES").isEqualTo(1);
            assertThat(st.bytesPlaced()).isEqualTo(PAGES * PAGE);
            assertThat(st.pagesPlaced() + st.zeroPagesPlaced()).isEqualTo(PAGES);
            assertThat(st.latency().count()).isPositive();
            assertThat(st.latency().p50()).isPositive();
            assertThat(st.blocktimeMicros()).isPositive();
            assertThat(st.blocktimeByThread()).isNotEmpty();
            assertThat(st.blocks()).singleElement().satisfies(b -> assertThat(b.receivedPercent()).isEqualTo(100.0));
            if (hotSwap) assertThat(high.calls.get()).as("the higher-ranked backend took over while bound").isPositive();
            assertThat(low.calls.get()).isPositive();
            assertThat(requests.failure()).isNull();
            MissingPages missing = in.cleanup();
            assertThat(missing.totalBytes()).isZero();
            assertThat(in.state()).isEqualTo(IncomingState.END);
            assertThat(service.incoming()).isEmpty();
        } finally {
            in.cleanup();
            registry.remove("pc.ram");
            NativeMemory.free(image);
        }
    }

    /** Places a run split into data and zero pieces, as the stream would carry them. */
    static void place(IncomingPostcopy in, RamBlock ram, long image, long offset, long length) {
        SourceImage.forEachRun(offset, length, 0, (o, l, zero) -> {
            if (zero) in.placeZeroPages(ram, o, l);
            else in.placePages(ram, o, image + o, l);
        });
    }

    @Test
    void manyThreadsFaultWhileTheStreamRuns() throws Exception {
        storm(false);
    }

    @Test
    void backendsSwapUnderLoadWithoutLosingOrDoublingAPage() throws Exception {
        storm(true);
    }
}
