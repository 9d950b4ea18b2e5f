package io.postcopy.uffd;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.BitSet;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** WP_ASYNC + PAGEMAP_SCAN: exactly the pages written since the last scan, nothing else. */
class DirtyTrackerTest {
    static final long PAGE = NativeMemory.pageSize();

    static BitSet scan(DirtyTracker t, long base) {
        BitSet dirty = new BitSet();
        t.scan((s, e) -> {
            assertThat(s).isGreaterThanOrEqualTo(base);
            assertThat((s - base) % PAGE).isZero();
            assertThat((e - base) % PAGE).isZero();
            dirty.set((int) ((s - base) / PAGE), (int) ((e - base) / PAGE));
        });
        return dirty;
    }

    @Test
    void reportsExactlyThePagesWrittenSinceTheLastScan() {
        int pages = 4096;   // 16 MiB
        try (Mapping m = Mapping.anonymous(pages * PAGE)) {
            // populate half the pages before tracking starts: both populated and never-touched pages must be tracked
            for (int p = 0; p < pages; p += 2) NativeMemory.putLong(m.address() + p * PAGE, p);
            try (DirtyTracker t = new DirtyTracker(m.address(), m.length())) {
                assertThat(scan(t, m.address()).cardinality()).as("clean right after start").isZero();
                Random rnd = new Random(42);
                for (int round = 0; round < 5; round++) {
                    BitSet written = new BitSet();
                    for (int i = 0; i < 300; i++) {
                        int p = rnd.nextInt(pages);
                        written.set(p);
                        NativeMemory.putLong(m.address() + p * PAGE + rnd.nextInt((int) PAGE / 8) * 8L, round + 1);
                    }
                    // a contiguous run too, to see runs merged into regions
                    int runStart = rnd.nextInt(pages - 100);
                    for (int p = runStart; p < runStart + 100; p++) {
                        written.set(p);
                        NativeMemory.putByte(m.address() + p * PAGE, (byte) 1);
                    }
                    // reads do not dirty
                    for (int i = 0; i < 200; i++) NativeMemory.getLong(m.address() + rnd.nextInt(pages) * PAGE);
                    assertThat(scan(t, m.address())).as("round " + round).isEqualTo(written);
                    assertThat(scan(t, m.address()).cardinality()).as("re-protected after the scan").isZero();
                }
            }
            // after close, writes are plain writes again
            NativeMemory.putLong(m.address(), 99);
            assertThat(NativeMemory.getLong(m.address())).isEqualTo(99);
        }
    }

    @Test
    void manyScatteredRegionsNeedSeveralWalks() {
        int pages = 3 * 4096 + 10;  // more single-page regions than one PageMap array holds
        try (Mapping m = Mapping.anonymous(pages * PAGE); DirtyTracker t = new DirtyTracker(m.address(), m.length())) {
            BitSet written = new BitSet();
            for (int p = 0; p < pages; p += 2) {
                written.set(p);
                NativeMemory.putByte(m.address() + p * PAGE, (byte) 7);
            }
            assertThat(scan(t, m.address())).isEqualTo(written);
        }
    }
}
