package io.postcopy.testkit;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A vCPU stand-in: a thread that reads guest memory through native calls ({@code memcpy}), so that a read of
 * a missing page faults and blocks in native code, as a vCPU thread does (not in Java code, where it would hold
 * up safepoints), and checks what it read. It reads either {@link #randomPages random 4 KiB pages} of a region
 * or {@link #range one range} once, and compares with an {@link #expect image}, with {@link #expectZero zeros},
 * or not at all ({@link #into} keeps the bytes for the test to look at).
 *
 * <p>The test thread configures it before {@link #start()} (the fluent setters are not for a running reader),
 * the reader runs on its own daemon thread, and the test thread reads {@link #mismatches()} after
 * {@link #awaitDone}.
 */
public final class VcpuReader extends Thread {
    private static final long PAGE = SourceImage.PAGE;

    private final long base, length;
    private final int reads;   // random pages: how many reads; 0: the range once
    private final long seed;
    private long expected;      // the content of [base, base+length) at this address, 0: none
    private boolean expectZero;
    private long into;          // where the bytes go, 0: a buffer of the reader's own
    private AtomicLong mismatches = new AtomicLong();

    private VcpuReader(long base, long length, int reads, long seed) {
        this.base = base;
        this.length = length;
        this.reads = reads;
        this.seed = seed;
        setDaemon(true);
    }

    /** {@code reads} reads of 4 KiB pages of the block chosen by {@code new Random(seed)}. */
    public static VcpuReader randomPages(RamBlock block, int reads, long seed) {
        return randomPages(block.hostAddress(), block.usedLength(), reads, seed);
    }

    /** {@code reads} reads of 4 KiB pages of {@code [base, base+length)} chosen by {@code new Random(seed)}. */
    public static VcpuReader randomPages(long base, long length, int reads, long seed) {
        if (reads <= 0) throw new IllegalArgumentException("reads " + reads);
        return new VcpuReader(base, length, reads, seed);
    }

    /** One read of {@code [address, address+length)}. */
    public static VcpuReader range(long address, long length) {
        return new VcpuReader(address, length, 0, 0);
    }

    /** Checks each read against {@code image}, the expected content of the region or range (same offsets). */
    public VcpuReader expect(long image) {
        this.expected = image;
        return this;
    }

    /** Checks that each read finds zeros. */
    public VcpuReader expectZero() {
        this.expectZero = true;
        return this;
    }

    /** Copies into {@code buffer} (at least a page, or the range's length) instead of a buffer of its own. */
    public VcpuReader into(long buffer) {
        this.into = buffer;
        return this;
    }

    /** Counts mismatches into {@code counter}, shared with other readers. */
    public VcpuReader countInto(AtomicLong counter) {
        this.mismatches = counter;
        return this;
    }

    public VcpuReader named(String name) {
        setName(name);
        return this;
    }

    /** Reads found wrong (with several readers counting into one counter: all of theirs). */
    public long mismatches() {
        return mismatches.get();
    }

    /** Waits up to {@code timeout} for the reader to finish; false while it is still blocked or reading. */
    public boolean awaitDone(Duration timeout) throws InterruptedException {
        join(Math.max(1, timeout.toMillis()));
        return !isAlive();
    }

    @Override
    public void run() {
        long chunk = reads > 0 ? PAGE : length;
        long buf = into != 0 ? into : NativeMemory.allocate(chunk);
        try {
            if (reads == 0) {
                read(0, buf, chunk);
                return;
            }
            Random r = new Random(seed);
            long pages = length / PAGE;
            for (int i = 0; i < reads; i++) read(r.nextInt((int) pages) * PAGE, buf, chunk);
        } finally {
            if (into == 0) NativeMemory.free(buf);
        }
    }

    private void read(long offset, long buf, long len) {
        NativeMemory.nativeCopy(base + offset, buf, len);
        boolean ok = expectZero ? NativeMemory.isZero(buf, len)
                : expected == 0 || NativeMemory.nativeCompare(buf, expected + offset, len) == 0;
        if (!ok) mismatches.incrementAndGet();
    }
}
