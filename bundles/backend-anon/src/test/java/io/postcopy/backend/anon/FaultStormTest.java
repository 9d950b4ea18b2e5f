package io.postcopy.backend.anon;

import static io.postcopy.backend.anon.Guest.PAGE;
import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.backend.anon.internal.AnonPlacementBackend;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.IncomingState;
import io.postcopy.fault.MissingPages;
import io.postcopy.fault.PlacementBackend;
import io.postcopy.fault.PlacementContext;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
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
 * requests first: the destination's whole postcopy path on the real kernel.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FaultStormTest {
    static final long PAGES = 16384;   // 64 MiB

    /** A real backend that counts its placements, to see hot swaps happen. */
    static final class Counting implements PlacementBackend {
        final AnonPlacementBackend real = new AnonPlacementBackend();
        final AtomicLong calls = new AtomicLong();
        final String name;

        Counting(String name) { this.name = name; }

        @Override public String name() { return name; }
        @Override public boolean supports(RamBlock b) { return real.supports(b); }
        @Override public String supportedKinds() { return real.supportedKinds(); }
        @Override public long place(PlacementContext c, long o, long s, long l) { calls.incrementAndGet(); return real.place(c, o, s, l); }
        @Override public long placeZero(PlacementContext c, long o, long l) { calls.incrementAndGet(); return real.placeZero(c, o, l); }
        @Override public void discard(PlacementContext c, long o, long l) { real.discard(c, o, l); }
    }

    void storm(boolean hotSwap) throws Exception {
        RamBlockRegistry registry = Guest.registry();
        FaultService service = Guest.service(registry);
        Counting low = new Counting("anon"), high = new Counting("anon-high");
        service.addBackend(low, 0);
        RamBlock ram = registry.create("pc.ram", PAGES * PAGE, RamBlock.Backing.ANONYMOUS);
        long image = Guest.image(PAGES, 42);
        Guest.Requests requests = new Guest.Requests(PAGES);
        IncomingPostcopy in = service.create("storm", List.of(ram), requests);
        try {
            in.advise();
            in.listen();
            in.run();
            assertThat(in.state()).isEqualTo(IncomingState.RUNNING);

            AtomicLong mismatches = new AtomicLong();
            List<Guest.Reader> readers = new ArrayList<>();
            for (int t = 0; t < 8; t++) readers.add(new Guest.Reader(ram, image, 400, t, mismatches));
            readers.forEach(Thread::start);

            AtomicBoolean stop = new AtomicBoolean();
            // the source: requested pages jump the queue
            Thread source = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        Long off = requests.queue.poll(10, TimeUnit.MILLISECONDS);
                        if (off != null) place(in, ram, image, off, PAGE);
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
            for (Guest.Reader r : readers) r.join(30_000);
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
            assertThat(requests.failed).isNull();
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
        for (long o = offset; o < offset + length; o += PAGE) {
            if ((o / PAGE) % 7 == 3) in.placeZeroPages(ram, o, PAGE);
        }
        // data pages in contiguous runs between the zero pages
        long runStart = -1;
        for (long o = offset; o <= offset + length; o += PAGE) {
            boolean data = o < offset + length && (o / PAGE) % 7 != 3;
            if (data && runStart < 0) runStart = o;
            if (!data && runStart >= 0) {
                in.placePages(ram, runStart, image + runStart, o - runStart);
                runStart = -1;
            }
        }
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
