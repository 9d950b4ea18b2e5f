package io.postcopy.benchmarks.e2e;

import io.postcopy.uffd.*;
import io.postcopy.ramblock.*;
/** Cost of the source's dirty tracker alone on one anonymous block: register + write-protect, PAGEMAP_SCAN, writes to write-protected pages, close. Args: MiB. */
public final class DirtyTrackerProbe {
    private DirtyTrackerProbe() {}

    public static void main(String[] a) throws Exception {
        long size = Long.parseLong(a[0]) << 20;
        RamBlockRegistry r = RamBlocks.newRegistry();
        RamBlock b = r.create("x", size, RamBlock.Backing.ANONYMOUS);
        for (long o = 0; o < size; o += 4096) NativeMemory.putLong(b.hostAddress() + o + 8, o | 1);
        for (int i = 0; i < 3; i++) {
            long t0 = System.nanoTime();
            DirtyTracker t = new DirtyTracker(b.hostAddress(), size);
            long t1 = System.nanoTime();
            long d = t.scan((s, e) -> {});
            long t2 = System.nanoTime();
            for (long o = 0; o < size; o += 64 * 4096) NativeMemory.putLong(b.hostAddress() + o + 16, i);
            long t3 = System.nanoTime();
            long d2 = t.scan((s, e) -> {});
            long t4 = System.nanoTime();
            t.close();
            long t5 = System.nanoTime();
            System.out.printf("%d MiB: new DirtyTracker (register+WP) %.1f ms, first scan %.1f ms (%d B dirty), %d writes %.1f ms, scan %.1f ms (%d B), close %.1f ms%n",
                size >> 20, (t1 - t0) / 1e6, (t2 - t1) / 1e6, d, size / (64 * 4096), (t3 - t2) / 1e6, (t4 - t3) / 1e6, d2, (t5 - t4) / 1e6);
        }
        r.removeAll();
    }
}
