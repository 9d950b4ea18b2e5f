package io.postcopy.backend.hugepage;

import io.postcopy.fault.standalone.FaultHandlers;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.PageRequester;
import io.postcopy.policy.Policies;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Assumptions;

/**
 * Test fixtures for hugetlb blocks: a huge-page reservation that restores the old pool size, a source image
 * with zero target pages and whole zero huge pages, a "stream" that sends each huge page's target pages
 * contiguously and in order in several shapes, a requester, and native readers acting as vCPUs.
 */
final class HugeGuest {
    static final long PAGE = 4096;
    static final Path NR_HUGEPAGES = Path.of("/proc/sys/vm/nr_hugepages");

    private HugeGuest() {}

    static FaultService service(RamBlockRegistry registry) {
        return FaultHandlers.newService(registry, Policies.newBalloonInhibitor(), Policies.newMemoryLockPolicy(false),
                Policies.newHugePagePolicy(true));
    }

    /** Raises the default huge page pool by {@code pages}; {@link #close} puts the old size back. */
    static final class Reservation implements AutoCloseable {
        final long old;

        private Reservation(long old) {
            this.old = old;
        }

        static Reservation reserve(long pages) {
            long huge = NativeMemory.hugePageSize();
            if (huge == 0) abort("the kernel has no huge pages (no Hugepagesize in /proc/meminfo)");
            long old;
            try {
                old = Long.parseLong(Files.readString(NR_HUGEPAGES).trim());
            } catch (IOException | NumberFormatException e) {
                abort("cannot read " + NR_HUGEPAGES + ": " + e);
                return null;
            }
            Reservation r = new Reservation(old);
            try {
                Files.writeString(NR_HUGEPAGES, Long.toString(old + pages));
            } catch (IOException e) {
                abort("cannot write " + NR_HUGEPAGES + " (not root?): " + e);
            }
            long free = NativeMemory.hugePagesFree();
            if (free < pages) {
                r.close();
                abort("asked for " + pages + " more huge pages of " + (huge >> 10) + " KiB, only " + free + " free");
            }
            return r;
        }

        private static void abort(String why) {
            System.err.println("\n*****************************************************************************");
            System.err.println("*** HUGETLB TESTS SKIPPED: this machine cannot reserve huge pages: " + why);
            System.err.println("*** the hugepage placement backend is NOT tested here");
            System.err.println("*****************************************************************************\n");
            Assumptions.abort("cannot reserve huge pages: " + why);
        }

        @Override
        public void close() {
            try {
                Files.writeString(NR_HUGEPAGES, Long.toString(old));
            } catch (IOException e) {
                System.err.println("*** could not restore " + NR_HUGEPAGES + " to " + old + ": " + e);
            }
        }
    }

    /**
     * Source content. Target pages with {@code p % 7 == 3} are zero; huge pages with {@code h % 5 == 4} are
     * entirely zero; every other 8-byte word depends on (seed, page, word).
     */
    static long image(long bytes, long huge, long seed) {
        long a = NativeMemory.allocate(bytes);
        for (long p = 0; p < bytes / PAGE; p++) {
            if (p % 7 == 3 || ((p * PAGE) / huge) % 5 == 4) continue;
            for (long o = 0; o < PAGE; o += 8) NativeMemory.putLong(a + p * PAGE + o, seed * 0x9E3779B97F4A7C15L ^ (p << 20) ^ o);
        }
        return a;
    }

    static boolean zeroPage(long offset, long huge) {
        return (offset / PAGE) % 7 == 3 || (offset / huge) % 5 == 4;
    }

    /**
     * The source side of one migration stream: each call sends whole huge pages under the stream lock (one
     * TCP stream carries one huge page's target pages back to back; a requested page jumps the queue only
     * between huge pages, as in QEMU).
     */
    static final class Stream {
        final IncomingPostcopy in;
        final RamBlock block;
        final long image, huge;   // huge: the unit sent in one piece (the block's huge page, or 64 KiB)

        Stream(IncomingPostcopy in, RamBlock block, long image, long unit) {
            this.in = in;
            this.block = block;
            this.image = image;
            this.huge = unit;
        }

        long units() {
            return block.usedLength() / huge;
        }

        /** Sends unit (huge page) {@code h} in the shape {@code shape % 4} names. */
        synchronized void sendHugePage(long h, int shape) {
            long base = h * huge;
            boolean allZero = (base / huge) % 5 == 4;
            switch (shape % 4) {
                case 0: // one target page per call, zero pages as zero pages
                    for (long o = base; o < base + huge; o += PAGE) one(o);
                    break;
                case 1: // data runs between zero pages
                    runs(base, huge);
                    break;
                case 2: // the whole huge page in one call
                    if (allZero) in.placeZeroPages(block, base, huge);
                    else in.placePages(block, base, image + base, huge);
                    break;
                default: // 64 KiB runs of raw bytes (zero pages sent as data)
                    for (long o = base; o < base + huge; o += 16 * PAGE) in.placePages(block, o, image + o, 16 * PAGE);
            }
        }

        /** Sends huge pages {@code h} and {@code h+1} as three runs, the middle one spanning both. */
        synchronized void sendPairSpanning(long h) {
            long base = h * huge, a = huge * 3 / 4, b = huge * 3 / 2;   // [0, 3/4) [3/4, 3/2) [3/2, 2) huge pages
            in.placePages(block, base, image + base, a);
            in.placePages(block, base + a, image + base + a, b - a);
            in.placePages(block, base + b, image + base + b, 2 * huge - b);
        }

        private void one(long o) {
            if (zeroPage(o, huge)) in.placeZeroPages(block, o, PAGE);
            else in.placePages(block, o, image + o, PAGE);
        }

        private void runs(long offset, long length) {
            long runStart = -1;
            for (long o = offset; o <= offset + length; o += PAGE) {
                boolean data = o < offset + length && !zeroPage(o, huge);
                if (data && runStart < 0) runStart = o;
                if (!data && runStart >= 0) {
                    in.placePages(block, runStart, image + runStart, o - runStart);
                    runStart = -1;
                }
                if (o < offset + length && !data) in.placeZeroPages(block, o, PAGE);
            }
        }
    }

    /** Records requests (per block and offset) and queues them for the test's source. */
    record Request(String block, long offset, long length) {}

    static final class Requests implements PageRequester {
        final LinkedBlockingQueue<Request> queue = new LinkedBlockingQueue<>();
        final ConcurrentHashMap<String, Integer> perPage = new ConcurrentHashMap<>();
        final AtomicLong count = new AtomicLong(), badLength = new AtomicLong();
        volatile String lastBlock;
        volatile Throwable failed;
        final java.util.function.ToLongFunction<String> pageSizeOf;

        Requests(java.util.function.ToLongFunction<String> pageSizeOf) {
            this.pageSizeOf = pageSizeOf;
        }

        @Override
        public void requestPage(String blockIdstr, long offset, long length) {
            // REQ_PAGES carries no name: the block is the one last named
            String name = blockIdstr != null ? blockIdstr : lastBlock;
            lastBlock = name;
            long ps = pageSizeOf.applyAsLong(name);
            if (length != ps || offset % ps != 0) badLength.incrementAndGet();
            perPage.merge(name + "@" + offset, 1, Integer::sum);
            count.incrementAndGet();
            queue.add(new Request(name, offset, length));
        }

        @Override
        public void failed(Throwable cause) {
            failed = cause;
        }

        int maxPerPage() {
            return perPage.values().stream().mapToInt(Integer::intValue).max().orElse(0);
        }
    }

    /** A vCPU stand-in: reads random target pages by native memcpy (a fault blocks in native code) and checks them. */
    static final class Reader extends Thread {
        final RamBlock block;
        final long image;
        final int reads;
        final long seed;
        final AtomicLong mismatches;
        final long buf = NativeMemory.allocate(PAGE);

        Reader(RamBlock block, long image, int reads, long seed, AtomicLong mismatches) {
            super("reader-" + block.idstr() + "-" + seed);
            this.block = block;
            this.image = image;
            this.reads = reads;
            this.seed = seed;
            this.mismatches = mismatches;
            setDaemon(true);
        }

        @Override
        public void run() {
            Random r = new Random(seed);
            long pages = block.usedLength() / PAGE;
            for (int i = 0; i < reads; i++) {
                long p = r.nextInt((int) pages);
                NativeMemory.nativeCopy(block.hostAddress() + p * PAGE, buf, PAGE);
                if (NativeMemory.nativeCompare(buf, image + p * PAGE, PAGE) != 0) mismatches.incrementAndGet();
            }
        }
    }
}
