package io.postcopy.uffd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The userfaultfd ioctls against the real kernel: threads really block on faults and are really released. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class UserfaultfdTest {
    static final long PAGE = NativeMemory.pageSize();

    Userfaultfd uffd;
    Mapping ram;
    long src;

    @BeforeEach
    void setUp() {
        uffd = Userfaultfd.open();
        uffd.api(EnumSet.of(UffdFeature.THREAD_ID));
        ram = Mapping.anonymous(64 * PAGE);
        src = NativeMemory.allocate(64 * PAGE);
    }

    @AfterEach
    void tearDown() {
        uffd.close();
        ram.close();
        NativeMemory.free(src);
    }

    /** A thread that reads one page of registered memory through a native call (so it blocks in the kernel). */
    static final class Reader extends Thread {
        final long addr;
        final long len;
        final long into = NativeMemory.allocate(PAGE);
        final CountDownLatch done = new CountDownLatch(1);
        final AtomicLong tid = new AtomicLong();

        Reader(long addr) {
            this(addr, PAGE);
        }

        Reader(long addr, long len) {
            this.addr = addr;
            this.len = len;
            setDaemon(true);
        }

        @Override
        public void run() {
            tid.set(NativeMemory.gettid());
            NativeMemory.nativeCopy(addr, into, len);
            done.countDown();
        }

        boolean finished(long millis) throws InterruptedException {
            return done.await(millis, TimeUnit.MILLISECONDS);
        }
    }

    /** Waits for exactly the faults expected; returns the addresses seen. */
    static List<Long> awaitFaults(Userfaultfd uffd, UffdMessages msgs, int expected) {
        List<Long> seen = new ArrayList<>();
        try (Poller poller = new Poller(uffd.fd())) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (seen.size() < expected && System.nanoTime() < deadline) {
                if (poller.poll(100) == 0) continue;
                int n = msgs.read(uffd);
                for (int i = 0; i < n; i++) {
                    assertThat(msgs.event(i)).isEqualTo(UffdMessages.EVENT_PAGEFAULT);
                    seen.add(msgs.faultAddress(i));
                }
            }
        }
        return seen;
    }

    void fillSource(int pages, int seed) {
        for (long p = 0; p < pages; p++)
            for (long o = 0; o < PAGE; o += 8) NativeMemory.putLong(src + p * PAGE + o, seed * 1_000_003L + p * 4099 + o);
    }

    @Test
    void faultBlocksUntilCopyPlacesThePage() throws Exception {
        Set<UffdIoctl> ioctls = uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
        assertThat(ioctls).contains(UffdIoctl.COPY, UffdIoctl.ZEROPAGE, UffdIoctl.WAKE);
        fillSource(1, 7);
        Reader r = new Reader(ram.address() + 5 * PAGE + 123, PAGE - 123);
        r.start();
        try (UffdMessages msgs = new UffdMessages(16)) {
            List<Long> faults = awaitFaults(uffd, msgs, 1);
            assertThat(faults).containsExactly(ram.address() + 5 * PAGE + 123 & ~(PAGE - 1));
            assertThat(msgs.faultThreadId(0)).isEqualTo((int) r.tid.get());
            assertThat(msgs.isWrite(0)).isFalse();
        }
        assertThat(r.finished(200)).as("reader must still be blocked before the copy").isFalse();
        assertThat(uffd.copy(ram.address() + 5 * PAGE, src, PAGE, 0)).isEqualTo(PAGE);
        assertThat(r.finished(5000)).isTrue();
        assertThat(NativeMemory.nativeCompare(r.into, src + 123, PAGE - 123)).isZero();
    }

    @Test
    void zeropageReleasesWithZeroes() throws Exception {
        uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
        Reader r = new Reader(ram.address());
        NativeMemory.fill(r.into, PAGE, (byte) 0x5a);
        r.start();
        try (UffdMessages msgs = new UffdMessages(4)) {
            assertThat(awaitFaults(uffd, msgs, 1)).containsExactly(ram.address());
        }
        assertThat(uffd.zeropage(ram.address(), PAGE, 0)).isEqualTo(PAGE);
        assertThat(r.finished(5000)).isTrue();
        assertThat(NativeMemory.isZero(r.into, PAGE)).isTrue();
    }

    @Test
    void secondCopyOfAPageReportsExists() {
        uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
        fillSource(2, 1);
        assertThat(uffd.copy(ram.address(), src, PAGE, 0)).isEqualTo(PAGE);
        assertThat(uffd.copy(ram.address(), src + PAGE, PAGE, 0)).isEqualTo(Userfaultfd.EXISTS);
        assertThat(uffd.zeropage(ram.address(), PAGE, 0)).isEqualTo(Userfaultfd.EXISTS);
        // the first copy's content stays
        assertThat(NativeMemory.nativeCompare(ram.address(), src, PAGE)).isZero();
    }

    @Test
    void copyRunSkipsPresentPagesAndPlacesTheRest() {
        uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
        fillSource(8, 3);
        assertThat(uffd.copy(ram.address() + 3 * PAGE, src + 3 * PAGE, PAGE, 0)).isEqualTo(PAGE);
        // a run over 8 pages with page 3 present: the kernel copies 3 pages, reports EEXIST at page 3, ...
        assertThat(uffd.copyRun(ram.address(), src, 8 * PAGE, PAGE, 0)).isEqualTo(7 * PAGE);
        assertThat(NativeMemory.nativeCompare(ram.address(), src, 8 * PAGE)).isZero();
        assertThat(uffd.zeropageRun(ram.address(), 10 * PAGE, PAGE, 0)).isEqualTo(2 * PAGE);
    }

    @Test
    void dontwakeThenWake() throws Exception {
        uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
        fillSource(1, 9);
        Reader r = new Reader(ram.address() + 2 * PAGE);
        r.start();
        try (UffdMessages msgs = new UffdMessages(4)) {
            awaitFaults(uffd, msgs, 1);
        }
        assertThat(uffd.copy(ram.address() + 2 * PAGE, src, PAGE, Userfaultfd.COPY_DONTWAKE)).isEqualTo(PAGE);
        assertThat(r.finished(300)).as("DONTWAKE leaves the thread asleep").isFalse();
        uffd.wake(ram.address() + 2 * PAGE, PAGE);
        assertThat(r.finished(5000)).isTrue();
        assertThat(NativeMemory.nativeCompare(r.into, src, PAGE)).isZero();
    }

    @Test
    void unregisterStopsFaults() throws Exception {
        uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
        uffd.unregister(ram.address(), ram.length());
        Reader r = new Reader(ram.address() + PAGE);
        r.start();
        assertThat(r.finished(5000)).as("unregistered memory faults in normally").isTrue();
        assertThat(NativeMemory.isZero(r.into, PAGE)).isTrue();
        try (UffdMessages msgs = new UffdMessages(4)) {
            assertThat(msgs.read(uffd)).isZero();
        }
    }

    @Test
    void unregisterWakesBlockedThreads() throws Exception {
        uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
        Reader r = new Reader(ram.address());
        r.start();
        try (UffdMessages msgs = new UffdMessages(4)) {
            awaitFaults(uffd, msgs, 1);
        }
        uffd.unregister(ram.address(), ram.length());
        assertThat(r.finished(5000)).as("cleanup must not leave a thread blocked").isTrue();
    }

    @Test
    void quitEventfdWakesAPoller() throws Exception {
        try (EventFd quit = EventFd.create(true); Poller poller = new Poller(uffd.fd(), quit.fd())) {
            assertThat(poller.poll(50)).isZero();
            CountDownLatch woke = new CountDownLatch(1);
            Thread t = new Thread(() -> {
                if (poller.poll(10_000) > 0 && poller.readable(1) && !poller.readable(0)) woke.countDown();
            });
            t.start();
            Thread.sleep(100);
            quit.signal();
            assertThat(woke.await(5, TimeUnit.SECONDS)).isTrue();
            t.join();
            assertThat(quit.drain()).isEqualTo(1);
            assertThat(quit.drain()).isZero();
        }
    }

    @Test
    void oneBatchedReadReturnsTheFaultsOfManyThreads() throws Exception {
        int threads = 64;
        Mapping big = Mapping.anonymous(threads * PAGE);
        try {
            uffd.register(big.address(), big.length(), EnumSet.of(RegisterMode.MISSING));
            List<Reader> readers = new ArrayList<>();
            for (int i = 0; i < threads; i++) {
                Reader r = new Reader(big.address() + i * PAGE);
                readers.add(r);
                r.start();
            }
            // wait until every thread has faulted: the read below must see them all at once
            Thread.sleep(1500);
            Set<Long> addrs = new HashSet<>();
            Set<Integer> tids = new HashSet<>();
            try (UffdMessages msgs = new UffdMessages(128)) {
                int n = msgs.read(uffd);
                assertThat(n).isEqualTo(threads);
                for (int i = 0; i < n; i++) {
                    addrs.add(msgs.faultAddress(i));
                    tids.add(msgs.faultThreadId(i));
                }
            }
            assertThat(addrs).hasSize(threads);
            assertThat(tids).hasSize(threads);
            assertThat(uffd.zeropageRun(big.address(), big.length(), PAGE, 0)).isEqualTo(big.length());
            for (Reader r : readers) assertThat(r.finished(5000)).isTrue();
        } finally {
            uffd.unregister(big.address(), big.length());
            big.close();
        }
    }

    @Test
    void minorFaultOnMemfdResolvedByContinue() throws Exception {
        try (Userfaultfd minor = Userfaultfd.open();
             Mapping shm = Mapping.memfd("minor-test", 4 * PAGE)) {
            minor.api(EnumSet.of(UffdFeature.MINOR_SHMEM));
            // a second mapping of the same file fills the page cache; the registered mapping sees a MINOR fault
            long other = NativeMemory.mmap(4 * PAGE, NativeMemory.PROT_READ | NativeMemory.PROT_WRITE, NativeMemory.MAP_SHARED, shm.fd(), 0);
            try {
                fillSource(1, 11);
                NativeMemory.copy(src, other + PAGE, PAGE);
                Set<UffdIoctl> ioctls = minor.register(shm.address(), shm.length(), EnumSet.of(RegisterMode.MINOR));
                assertThat(ioctls).contains(UffdIoctl.CONTINUE);
                Reader r = new Reader(shm.address() + PAGE);
                r.start();
                try (UffdMessages msgs = new UffdMessages(4); Poller p = new Poller(minor.fd())) {
                    assertThat(p.poll(5000)).isEqualTo(1);
                    assertThat(msgs.read(minor)).isEqualTo(1);
                    assertThat(msgs.isMinor(0)).isTrue();
                    assertThat(msgs.faultAddress(0)).isEqualTo(shm.address() + PAGE);
                }
                assertThat(minor.continueRange(shm.address() + PAGE, PAGE, 0)).isEqualTo(PAGE);
                assertThat(r.finished(5000)).isTrue();
                assertThat(NativeMemory.nativeCompare(r.into, src, PAGE)).isZero();
            } finally {
                NativeMemory.munmap(other, 4 * PAGE);
            }
        }
    }

    @Test
    void moveTransfersPagesWithoutCopying() throws Exception {
        try (Userfaultfd mover = Userfaultfd.open(); Mapping from = Mapping.anonymous(4 * PAGE)) {
            mover.api(EnumSet.of(UffdFeature.MOVE));
            mover.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
            fillSource(2, 5);
            NativeMemory.copy(src, from.address(), 2 * PAGE);
            Reader r = new Reader(ram.address() + 7 * PAGE);
            r.start();
            try (UffdMessages msgs = new UffdMessages(4)) {
                assertThat(awaitFaults(mover, msgs, 1)).containsExactly(ram.address() + 7 * PAGE);
            }
            assertThat(mover.move(ram.address() + 6 * PAGE, from.address(), 2 * PAGE, 0)).isEqualTo(2 * PAGE);
            assertThat(r.finished(5000)).isTrue();
            assertThat(NativeMemory.nativeCompare(r.into, src + PAGE, PAGE)).isZero();
            assertThat(NativeMemory.nativeCompare(ram.address() + 6 * PAGE, src, 2 * PAGE)).isZero();
            // the source pages are gone: reading them now gives fresh zero pages
            assertThat(NativeMemory.isZero(from.address(), 2 * PAGE)).isTrue();
        }
    }

    @Test
    void badArgumentsNameTheErrno() {
        uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
        // unaligned destination
        assertThatThrownBy(() -> uffd.copy(ram.address() + 1, src, PAGE, 0))
                .isInstanceOf(UffdException.class)
                .hasMessageContaining("UFFDIO_COPY").hasMessageContaining("EINVAL")
                .satisfies(e -> assertThat(((UffdException) e).errno()).isEqualTo(Errno.EINVAL));
        // a range that is not registered
        assertThatThrownBy(() -> uffd.copy(ram.address() + ram.length() + 1024 * PAGE, src, PAGE, 0))
                .isInstanceOf(UffdException.class).hasMessageContaining("ENOENT");
        // a second API handshake on the same descriptor
        assertThatThrownBy(() -> uffd.api(EnumSet.noneOf(UffdFeature.class)))
                .isInstanceOf(UffdException.class).hasMessageContaining("UFFDIO_API").hasMessageContaining("EINVAL");
        // madvise on an unaligned address
        assertThatThrownBy(() -> NativeMemory.madvise(ram.address() + 3, PAGE, NativeMemory.MADV_DONTNEED))
                .isInstanceOf(UffdException.class).hasMessageContaining("madvise").hasMessageContaining("MADV_DONTNEED")
                .hasMessageContaining("EINVAL");
        // a closed descriptor
        Userfaultfd gone = Userfaultfd.open();
        gone.close();
        assertThatThrownBy(() -> gone.wake(ram.address(), PAGE)).isInstanceOf(UffdException.class).hasMessageContaining("EBADF");
    }

    @Test
    void deviceNodeGivesAWorkingDescriptor() {
        try (Userfaultfd dev = Userfaultfd.openDevice(Userfaultfd.O_CLOEXEC | Userfaultfd.O_NONBLOCK)) {
            assertThat(dev.source()).isEqualTo(Userfaultfd.Source.DEVICE);
            Userfaultfd.Api api = dev.api(EnumSet.of(UffdFeature.THREAD_ID));
            assertThat(api.enabled()).containsExactly(UffdFeature.THREAD_ID);
            assertThat(api.available()).contains(UffdFeature.THREAD_ID, UffdFeature.MISSING_SHMEM);
            assertThat(api.ioctls()).contains(UffdIoctl.REGISTER, UffdIoctl.UNREGISTER, UffdIoctl.API);
        }
    }
}
