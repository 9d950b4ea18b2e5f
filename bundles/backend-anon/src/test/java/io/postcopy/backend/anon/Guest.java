package io.postcopy.backend.anon;

import io.postcopy.fault.standalone.FaultHandlers;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.PageRequester;
import io.postcopy.policy.Policies;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.uffd.NativeMemory;
import java.util.Random;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;

/** Test fixtures: a source image, a requester that records requests, and reader threads acting as vCPUs. */
final class Guest {
    static final long PAGE = 4096;

    static FaultService service(RamBlockRegistry registry) {
        return FaultHandlers.newService(registry, Policies.newBalloonInhibitor(), Policies.newMemoryLockPolicy(false),
                Policies.newHugePagePolicy(true));
    }

    static RamBlockRegistry registry() {
        return RamBlocks.newRegistry();
    }

    /** Deterministic content: every 8-byte word depends on (seed, page, word). */
    static long image(long pages, long seed) {
        long a = NativeMemory.allocate(pages * PAGE);
        for (long p = 0; p < pages; p++) {
            if (p % 7 == 3) continue;                          // some zero pages, for ZEROPAGE placement
            for (long o = 0; o < PAGE; o += 8) NativeMemory.putLong(a + p * PAGE + o, seed * 0x9E3779B97F4A7C15L ^ (p << 20) ^ o);
        }
        return a;
    }

    /** Records every request and hands it to a queue the test's "source" serves first. */
    static final class Requests implements PageRequester {
        final AtomicIntegerArray perPage;
        final BlockingQueue<Long> queue = new ArrayBlockingQueue<>(1 << 16);
        final AtomicLong count = new AtomicLong(), withName = new AtomicLong();
        volatile Throwable failed;

        Requests(long pages) {
            perPage = new AtomicIntegerArray((int) pages);
        }

        @Override
        public void requestPage(String blockIdstr, long offset, long length) {
            if (length != PAGE) throw new AssertionError("request length " + length);
            if (blockIdstr != null) withName.incrementAndGet();
            perPage.incrementAndGet((int) (offset / PAGE));
            count.incrementAndGet();
            queue.add(offset);
        }

        @Override
        public void failed(Throwable cause) {
            failed = cause;
        }

        int maxPerPage() {
            int m = 0;
            for (int i = 0; i < perPage.length(); i++) m = Math.max(m, perPage.get(i));
            return m;
        }
    }

    /** A vCPU stand-in: reads random pages through native calls (a fault then blocks in native code) and checks them. */
    static final class Reader extends Thread {
        final RamBlock block;
        final long image;
        final int reads;
        final long seed;
        final AtomicLong mismatches;
        final long buf = NativeMemory.allocate(PAGE);

        Reader(RamBlock block, long image, int reads, long seed, AtomicLong mismatches) {
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

    private Guest() {}
}
