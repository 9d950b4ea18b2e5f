package io.postcopy.fault;

import static io.postcopy.testkit.SourceImage.PAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.fault.test.PlacementRig;
import io.postcopy.fault.test.RecordingRequester;
import io.postcopy.fault.test.TestPlacementBackend;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockInUseException;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.testkit.Await;
import io.postcopy.testkit.VcpuReader;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.PageMap;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The fault service's incoming state machine, discard and placement validation, block ownership and cleanup,
 * on the real kernel with a placement backend that really places pages ({@link TestPlacementBackend}).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class IncomingLifecycleTest {
    PlacementRig rig;
    RamBlockRegistry registry;
    io.postcopy.fault.standalone.StandaloneFaultService service;
    RamBlock a, b;
    long image;

    @BeforeEach
    void setUp() {
        rig = new PlacementRig(new TestPlacementBackend(), 64 * PAGE, 9);
        registry = rig.registry;
        service = rig.service;
        image = rig.image;
        a = rig.anonymousBlock("a", 64 * PAGE);
        b = rig.anonymousBlock("b", 64 * PAGE);
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    @Test
    void callsOutOfOrderAreRefusedAndChangeNothing() {
        IncomingPostcopy in = service.create("m", List.of(a), new RecordingRequester(PAGE));
        assertThatThrownBy(in::listen).isInstanceOf(PostcopyException.class).hasMessageContaining("listen")
                .hasMessageContaining("NONE");
        assertThatThrownBy(in::run).isInstanceOf(PostcopyException.class);
        assertThatThrownBy(() -> in.placePages(a, 0, image, PAGE)).isInstanceOf(PostcopyException.class)
                .hasMessageContaining("placing pages is not allowed in state NONE");
        assertThatThrownBy(() -> in.discard("a", 0, PAGE)).isInstanceOf(PostcopyException.class);
        assertThat(in.state()).isEqualTo(IncomingState.NONE);
        in.advise();
        assertThatThrownBy(in::advise).isInstanceOf(PostcopyException.class).hasMessageContaining("ADVISE");
        assertThatThrownBy(in::run).isInstanceOf(PostcopyException.class);
        in.listen();
        assertThatThrownBy(() -> in.discard("a", 0, PAGE)).as("no discards once listening")
                .isInstanceOf(PostcopyException.class).hasMessageContaining("LISTENING");
        assertThatThrownBy(() -> in.loadPrecopyPages(a, 0, image, PAGE)).isInstanceOf(PostcopyException.class);
        assertThatThrownBy(in::prepareDiscard).isInstanceOf(PostcopyException.class);
        in.run();
        assertThat(in.state()).isEqualTo(IncomingState.RUNNING);
        in.cleanup();
        assertThat(in.state()).isEqualTo(IncomingState.END);
        assertThatThrownBy(() -> in.placePages(a, 0, image, PAGE)).isInstanceOf(PostcopyException.class);
        in.cleanup();   // idempotent
    }

    static boolean faultThreadAlive(String id) {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals("postcopy-fault-" + id) && t.isAlive());
    }

    /**
     * The fault thread starts at ADVISE, not at LISTEN as in QEMU: LISTEN is inside the downtime and starting a
     * real-time thread there cost milliseconds. It stops at cleanup, also when LISTEN never came.
     */
    @Test
    void theFaultThreadRunsFromAdviseUntilCleanup() {
        IncomingPostcopy in = service.create("early", List.of(a), new RecordingRequester(PAGE));
        assertThat(faultThreadAlive("early")).isFalse();
        in.advise();
        assertThat(faultThreadAlive("early")).as("started at ADVISE").isTrue();
        in.cleanup();
        assertThat(faultThreadAlive("early")).as("stopped at cleanup without LISTEN").isFalse();

        IncomingPostcopy again = service.create("late", List.of(a), new RecordingRequester(PAGE));
        again.advise();
        again.listen();
        again.run();
        assertThat(faultThreadAlive("late")).isTrue();
        again.cleanup();
        assertThat(faultThreadAlive("late")).isFalse();
    }

    @Test
    void aBlockBelongsToOneMigrationAtATime() {
        service.create("m1", List.of(a), new RecordingRequester(PAGE));
        assertThatThrownBy(() -> service.create("m2", List.of(a, b), new RecordingRequester(PAGE)))
                .isInstanceOf(PostcopyException.class).hasMessageContaining("already belongs to migration m1");
        assertThat(service.create("m3", List.of(b), new RecordingRequester(PAGE)).blocks()).containsExactly(b);
    }

    @Test
    void discardsOutsideTheBlockAreRefusedAndTouchNothing() {
        // b is mapped right after a or elsewhere: either way, a refused discard of a must leave both intact
        NativeMemory.copy(image, a.hostAddress(), a.usedLength());
        NativeMemory.copy(image, b.hostAddress(), b.usedLength());
        IncomingPostcopy in = service.create("m", List.of(a), new RecordingRequester(PAGE));
        in.advise();
        // advise empties the block: reload it as precopy would
        in.loadPrecopyPages(a, 0, image, a.usedLength());
        long[][] bad = {
            {64 * PAGE, PAGE},              // starts at the end
            {63 * PAGE, 2 * PAGE},          // runs past the end
            {-PAGE, PAGE},                  // negative
            {PAGE + 1, PAGE},               // unaligned start
            {0, PAGE + 100},                // unaligned length
            {0, 0},                         // empty
            {PAGE, Long.MAX_VALUE - 100},   // overflows
            {Long.MAX_VALUE & ~(PAGE - 1), PAGE},
        };
        for (long[] r : bad) {
            assertThatThrownBy(() -> in.discard("a", r[0], r[1])).as("discard %d+%d", r[0], r[1])
                    .isInstanceOf(PostcopyException.class).hasMessageContaining("discard of block a refused");
        }
        assertThatThrownBy(() -> in.discard("b", 0, PAGE)).as("a block of another migration")
                .isInstanceOf(PostcopyException.class).hasMessageContaining("no block named \"b\"");
        assertThat(NativeMemory.nativeCompare(a.hostAddress(), image, a.usedLength())).isZero();
        assertThat(NativeMemory.nativeCompare(b.hostAddress(), image, b.usedLength())).isZero();
        assertThat(in.statistics().discards()).isZero();

        // a valid discard drops exactly its pages, which then count as missing
        in.discard("a", 8 * PAGE, 3 * PAGE);
        // the block is registered from ADVISE on: reading the dropped pages would wait for postcopy, so ask the
        // kernel which pages are present instead
        assertThat(presentBytes(a.hostAddress() + 8 * PAGE, 3 * PAGE)).isZero();
        assertThat(presentBytes(a.hostAddress(), 64 * PAGE)).isEqualTo(61 * PAGE);
        assertThat(NativeMemory.nativeCompare(a.hostAddress(), image, 8 * PAGE)).isZero();
        assertThat(NativeMemory.nativeCompare(a.hostAddress() + 11 * PAGE, image + 11 * PAGE, 53 * PAGE)).isZero();
        assertThat(in.missing().ranges()).containsExactly(new MissingPages.Range("a", 8 * PAGE, 3 * PAGE));
        assertThat(in.statistics().discards()).isEqualTo(1);
        assertThat(in.state()).isEqualTo(IncomingState.DISCARD);
    }

    /** Bytes of {@code [addr, addr+len)} mapped to a page, from PAGEMAP_SCAN. */
    static long presentBytes(long addr, long len) {
        try (PageMap pm = new PageMap(256)) {
            long total = 0;
            int n = pm.scan(addr, addr + len, 0, PageMap.PAGE_IS_PRESENT, 0, 0, PageMap.PAGE_IS_PRESENT);
            for (int i = 0; i < n; i++) total += pm.regionEnd(i) - pm.regionStart(i);
            return total;
        }
    }

    @Test
    void placementsOutsideTheBlockAreRefused() {
        IncomingPostcopy in = service.create("m", List.of(a), new RecordingRequester(PAGE));
        in.advise();
        in.listen();
        assertThatThrownBy(() -> in.placePages(a, 64 * PAGE, image, PAGE)).isInstanceOf(PostcopyException.class)
                .hasMessageContaining("page of block a refused");
        assertThatThrownBy(() -> in.placeZeroPages(a, 10, PAGE)).isInstanceOf(PostcopyException.class);
        assertThatThrownBy(() -> in.placePages(b, 0, image, PAGE)).isInstanceOf(PostcopyException.class)
                .hasMessageContaining("not part of this migration");
        assertThat(in.statistics().bytesPlaced()).isZero();
    }

    @Test
    void cleanupWhileThreadsAreBlockedDoesNotHangAndReportsMissingPages() throws Exception {
        RecordingRequester requests = new RecordingRequester(PAGE);
        IncomingPostcopy in = service.create("m", List.of(a), requests);
        in.advise();
        in.listen();
        in.run();
        in.placePages(a, 0, image, 16 * PAGE);
        AtomicLong mismatches = new AtomicLong();
        List<VcpuReader> readers = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            VcpuReader t = VcpuReader.range(a.hostAddress() + (20 + i) * PAGE, PAGE).expectZero().countInto(mismatches);
            readers.add(t);
            t.start();
        }
        Await.until("4 requests", Duration.ofSeconds(10), () -> in.statistics().requests() >= 4);
        assertThat(in.statistics().requests()).isEqualTo(4);
        for (Thread t : readers) assertThat(t.isAlive()).as("blocked on its fault").isTrue();

        MissingPages missing = in.cleanup();
        for (VcpuReader t : readers) assertThat(t.awaitDone(Duration.ofSeconds(5))).as("cleanup woke the thread").isTrue();
        // cancelled postcopy cannot roll back: the unplaced pages read as fresh zero pages
        assertThat(mismatches.get()).isZero();
        assertThat(missing.ranges()).containsExactly(new MissingPages.Range("a", 16 * PAGE, 48 * PAGE));
        assertThat(missing.totalBytes()).isEqualTo(48 * PAGE);
        assertThat(in.state()).isEqualTo(IncomingState.END);
    }

    @Test
    void aBlockInUseIsNotRemovedAndAForcedRemovalFailsTheMigrationBeforeUnmapping() throws Exception {
        RecordingRequester requests = new RecordingRequester(PAGE);
        IncomingPostcopy in = service.create("m", List.of(a), requests);
        in.advise();
        in.listen();
        in.run();
        assertThatThrownBy(() -> registry.remove("a")).isInstanceOf(RamBlockInUseException.class)
                .hasMessage("RAM block \"a\" is in use by migration m");
        in.placePages(a, 0, image, PAGE);
        AtomicReference<Object> removed = new AtomicReference<>();
        Thread remover = new Thread(() -> {
            try {
                removed.set(registry.remove("a", Duration.ofSeconds(20)));
            } catch (RuntimeException e) {
                removed.set(e);
            }
        });
        remover.start();
        Await.until("the requester is told", Duration.ofSeconds(10), () -> requests.failure() != null);
        assertThat(in.failure()).get().asString().contains("RAM block a is being removed by force");
        // the holder has been asked, not yet let go: the memory is still there
        Thread.sleep(100);
        assertThat(removed.get()).isNull();
        assertThat(NativeMemory.getLong(a.hostAddress())).isEqualTo(NativeMemory.getLong(image));
        in.cleanup();
        remover.join(10_000);
        assertThat(removed.get()).isSameAs(a);
        assertThat(registry.byName("a")).isNull();
        assertThatThrownBy(() -> in.placePages(a, PAGE, image, PAGE)).isInstanceOf(PostcopyException.class);
    }

    @Test
    void aPlacementAfterCleanupHasBegunNeverTouchesTheBlock() throws Exception {
        RecordingRequester requests = new RecordingRequester(PAGE);
        IncomingPostcopy in = service.create("m", List.of(a), requests);
        in.advise();
        in.listen();
        in.run();
        AtomicLong placed = new AtomicLong(), refused = new AtomicLong();
        Thread placer = new Thread(() -> {
            for (long p = 0; p < 64; p = (p + 1) % 64) {
                try {
                    placed.addAndGet(in.placePages(a, p * PAGE, image + p * PAGE, PAGE));
                } catch (PostcopyException e) {
                    refused.incrementAndGet();
                    return;
                }
            }
        });
        placer.start();
        Await.until("8 pages placed", Duration.ofSeconds(30), () -> placed.get() >= 8 * PAGE);
        in.cleanup();
        // the block is no longer leased the moment cleanup returns: removing it must be safe at once
        registry.remove("a");
        placer.join(10_000);
        assertThat(placer.isAlive()).isFalse();
        assertThat(refused.get()).isEqualTo(1);
    }
}
