package io.postcopy.workload;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.Poller;
import io.postcopy.uffd.RegisterMode;
import io.postcopy.uffd.UffdFeature;
import io.postcopy.uffd.UffdMessages;
import io.postcopy.uffd.Userfaultfd;
import java.util.EnumSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The workload on memory registered with userfaultfd (MISSING), as on a postcopy destination: its threads block
 * on faults inside native code, so a Java resolver thread can place pages even while the JVM keeps reaching
 * safepoints (System.gc() in a loop). Were an access made from Java code, the first GC would deadlock.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class UserfaultfdWorkloadTest {
    static final int PAGE = Workload.PAGE_SIZE;
    static final long PAGES = 1024;

    final Blocks blocks = new Blocks();
    Userfaultfd uffd;
    RamBlock guest, source;

    @BeforeEach
    void setUp() {
        source = blocks.create("source", PAGES);
        Workload.fill(source, 99);
        guest = blocks.create("guest", PAGES);
        uffd = Userfaultfd.open();
        uffd.api(EnumSet.noneOf(UffdFeature.class));
        uffd.register(guest.hostAddress(), guest.usedLength(), EnumSet.of(RegisterMode.MISSING));
    }

    @AfterEach
    void tearDown() {
        uffd.unregister(guest.hostAddress(), guest.usedLength());
        uffd.close();
        blocks.close();
    }

    /** Places the faulting page from the source block; EEXIST (a racing second fault) is fine. */
    long place(long faultAddress) {
        long page = faultAddress & ~(long) (PAGE - 1);
        long r = uffd.copy(page, source.hostAddress() + (page - guest.hostAddress()), PAGE, 0);
        assertThat(r).isIn((long) PAGE, Userfaultfd.EXISTS);
        return r;
    }

    @Test
    void readOnlyWorkloadFinishesWhileAJavaResolverPlacesPagesUnderGcPressure() throws Exception {
        AtomicLong faults = new AtomicLong(), gcs = new AtomicLong();
        AtomicReference<Throwable> resolverFailure = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(1);
        Thread resolver = new Thread(() -> {
            try (Poller poller = new Poller(uffd.fd()); UffdMessages msgs = new UffdMessages(64)) {
                while (done.getCount() > 0) {
                    if (poller.poll(20) == 0) continue;
                    int n = msgs.read(uffd);
                    for (int i = 0; i < n; i++) {
                        if (msgs.event(i) != UffdMessages.EVENT_PAGEFAULT) continue;
                        place(msgs.faultAddress(i));
                        faults.incrementAndGet();
                    }
                }
            } catch (Throwable t) {
                resolverFailure.set(t);
            }
        }, "resolver");
        Thread gc = new Thread(() -> {
            while (done.getCount() > 0) {
                System.gc();
                gcs.incrementAndGet();
                // back-to-back full GCs leave the resolver almost no CPU on a loaded 2-core machine
                LockSupport.parkNanos(2_000_000);
            }
        }, "gc-loop");
        resolver.setDaemon(true);
        gc.setDaemon(true);
        resolver.start();
        gc.start();
        Workload w = Workloads.start(guest, WorkloadOptions.builder().pattern(AccessPattern.SEQUENTIAL).threads(2)
                .checkReads(true).accessesPerThread(PAGES / 2).build());
        boolean finished = false;
        try {
            // a deadlock (a Java-state access blocked on a fault) never finishes; a loaded machine is just slower
            finished = w.awaitTermination(120, TimeUnit.SECONDS);
            assertThat(finished).as("workload over uffd memory finished").isTrue();
        } finally {
            done.countDown();
            resolver.join(5000);
            gc.join(5000);
            if (!finished) {
                // wake anything still blocked, and end the threads before tearDown unmaps their memory
                uffd.unregister(guest.hostAddress(), guest.usedLength());
                w.stop();
            }
        }
        assertThat(resolverFailure.get()).isNull();
        assertThat(w.failure()).isNull();
        assertThat(gcs.get()).as("GCs ran meanwhile").isGreaterThan(1);
        assertThat(faults.get()).isBetween(1L, PAGES);
        assertThat(w.reads()).isEqualTo(PAGES);
        assertThat(w.pagesTouched()).isEqualTo(PAGES);
        assertThat(w.readMismatches()).isZero();
        LatencySummary l = w.latency();
        System.out.printf("uffd workload: %d faults placed under %d GCs; %s%n", faults.get(), gcs.get(), l);
        assertThat(l.count()).isEqualTo(PAGES);
        assertThat(l.stalls()).as("accesses that waited for the resolver").isPositive();
        assertThat(l.maxUs()).isGreaterThan(20.0);
        // every page arrived, and is the source's
        assertThat(Workload.verify(guest, 99)).isEqualTo(new VerifyResult(PAGES, 0, PAGES, 0, 0, -1));
        assertThat(PageDigest.compare(PageDigest.of(source), PageDigest.of(guest)).equal()).isTrue();
    }

    @Test
    void pauseWaitsForAnAccessBlockedOnAFaultToFinish() throws Exception {
        Workload w = Workloads.start(guest, WorkloadOptions.builder().pattern(AccessPattern.SEQUENTIAL)
                .checkReads(true).build());
        try (Poller poller = new Poller(uffd.fd()); UffdMessages msgs = new UffdMessages(4)) {
            assertThat(poller.poll(5000)).as("the first read faults").isPositive();
            assertThat(msgs.read(uffd)).isEqualTo(1);
            long fault = msgs.faultAddress(0);
            assertThat(fault).isEqualTo(guest.hostAddress());

            CountDownLatch paused = new CountDownLatch(1);
            Thread pauser = new Thread(() -> {
                w.pause();
                paused.countDown();
            }, "pauser");
            pauser.setDaemon(true);
            pauser.start();
            assertThat(paused.await(300, TimeUnit.MILLISECONDS)).as("pause waits for the blocked access").isFalse();
            assertThat(w.reads()).isZero();

            place(fault);
            assertThat(paused.await(5, TimeUnit.SECONDS)).isTrue();
            // the read returned after the pause was asked for: abandoned, not counted
            assertThat(w.reads()).isZero();
            assertThat(w.readMismatches()).isZero();
            // paused: no further access, so no further fault
            assertThat(poller.poll(200)).isZero();
            assertThat(w.reads()).isZero();
            w.resume();
            // resumed: the thread goes on to the next page, which faults
            assertThat(poller.poll(5000)).isPositive();
            assertThat(msgs.read(uffd)).isEqualTo(1);
            assertThat(msgs.faultAddress(0)).isEqualTo(guest.hostAddress() + PAGE);
        } finally {
            uffd.unregister(guest.hostAddress(), guest.usedLength());   // wake the thread blocked on the next page
            w.stop();
        }
        assertThat(w.isRunning()).isFalse();
    }

    @Test
    void aReadWokenIntoAPageThatNeverArrivedAfterRequestPauseIsNeverReturned() throws Exception {
        Workload w = Workloads.start(guest, WorkloadOptions.builder().pattern(AccessPattern.SEQUENTIAL)
                .threads(1).checkReads(true).build());
        try (Poller poller = new Poller(uffd.fd()); UffdMessages msgs = new UffdMessages(4)) {
            assertThat(poller.poll(5000)).as("the first read faults").isPositive();
            assertThat(msgs.read(uffd)).isEqualTo(1);
            long t0 = System.nanoTime();
            w.requestPause();
            assertThat(System.nanoTime() - t0).as("requestPause does not wait for the blocked read")
                    .isLessThan(TimeUnit.SECONDS.toNanos(1));
            // what a failing destination does next: unregister, which wakes the reader into a fresh zero page
            uffd.unregister(guest.hostAddress(), guest.usedLength());
            w.pause();
            assertThat(NativeMemory.isZero(guest.hostAddress(), 4096)).as("the page never arrived").isTrue();
            assertThat(w.reads()).as("the read of a page that never arrived is abandoned").isZero();
            assertThat(w.pagesTouched()).isZero();
            assertThat(w.latency().count()).isZero();
        } finally {
            w.stop();
        }
        assertThat(w.isRunning()).isFalse();
    }
}
