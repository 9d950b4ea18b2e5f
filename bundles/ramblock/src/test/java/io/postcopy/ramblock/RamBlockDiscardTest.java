package io.postcopy.ramblock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.ramblock.RamBlock.Backing;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

class RamBlockDiscardTest {
    private static final long PAGE = NativeMemory.pageSize();
    private static final int PAGES = 16;
    private final RamBlockRegistry registry = RamBlocks.newRegistry();

    @AfterEach
    void freeMemory() {
        registry.removeAll();
    }

    /** Every page holds its own non-zero marker, so a page that was dropped reads as zero. */
    private static void fill(RamBlock b) {
        for (long p = 0; p < b.maxLength() / PAGE; p++) NativeMemory.fill(b.hostAddress() + p * PAGE, PAGE, (byte) (p + 1));
    }

    private static boolean intact(RamBlock b, long page) {
        long a = b.hostAddress() + page * PAGE;
        return NativeMemory.getByte(a) == (byte) (page + 1) && NativeMemory.getByte(a + PAGE - 1) == (byte) (page + 1);
    }

    @ParameterizedTest
    @EnumSource(value = Backing.class, names = {"ANONYMOUS", "MEMFD"})
    void discardZeroesExactlyTheRange(Backing backing) {
        RamBlock b = registry.create("ram", PAGES * PAGE, backing);
        fill(b);
        b.discard(3 * PAGE, 4 * PAGE);
        for (long p = 0; p < PAGES; p++) {
            if (p >= 3 && p < 7) assertThat(NativeMemory.isZero(b.hostAddress() + p * PAGE, PAGE)).as("page %d", p).isTrue();
            else assertThat(intact(b, p)).as("page %d", p).isTrue();
        }
        b.discard(0, b.usedLength());
        assertThat(NativeMemory.isZero(b.hostAddress(), b.usedLength())).isTrue();
    }

    @Test
    void discardOfAnAdoptedBlockUsesDontneed() {
        try (Mapping external = Mapping.anonymous(PAGES * PAGE)) {
            RamBlock b = registry.adopt("ext", external.address(), external.length(), PAGE);
            fill(b);
            b.discard(PAGE, PAGE);
            assertThat(NativeMemory.isZero(b.hostAddress() + PAGE, PAGE)).isTrue();
            assertThat(intact(b, 0)).isTrue();
            assertThat(intact(b, 2)).isTrue();
            registry.remove("ext");
        }
    }

    @Test
    void badRangesAreRefusedBeforeAnyMemoryIsTouched() {
        RamBlock b = registry.create("ram", 8 * PAGE, PAGES * PAGE, Backing.ANONYMOUS);
        fill(b);
        assertThatThrownBy(() -> b.discard(7 * PAGE, 2 * PAGE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("outside block ram");
        assertThatThrownBy(() -> b.discard(-PAGE, 2 * PAGE)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> b.discard(0, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> b.discard(PAGE, Long.MAX_VALUE)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> b.discard(8 * PAGE, PAGE))
                .as("beyond the used length, though mapped").isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> b.discard(PAGE + 512, PAGE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not aligned");
        assertThatThrownBy(() -> b.discard(PAGE, PAGE - 512))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not aligned");
        for (long p = 0; p < PAGES; p++) assertThat(intact(b, p)).as("page %d", p).isTrue();
    }

    /**
     * Many ranges in one call (more than one process_madvise batch of 1024): exactly the ranges read as zero, for
     * owned (anonymous, memfd) and adopted blocks.
     */
    @ParameterizedTest
    @EnumSource(value = Backing.class, names = {"ANONYMOUS", "MEMFD"})
    void aBatchOfRangesZeroesExactlyThem(Backing backing) {
        int pages = 3300;    // 1,100 ranges: two system calls
        RamBlock b = registry.create("many", pages * PAGE, backing);
        fill(b);
        batchOfEveryThirdPair(b, pages);
        try (Mapping external = Mapping.anonymous(pages * PAGE)) {
            RamBlock a = registry.adopt("adopted", external.address(), external.length(), PAGE);
            fill(a);
            batchOfEveryThirdPair(a, pages);
            registry.remove("adopted");
        }
    }

    /** Discards pages {3k, 3k+1} for every k with one call (1,100 ranges of 2 pages) and checks. */
    private static void batchOfEveryThirdPair(RamBlock b, int pages) {
        int n = pages / 3;
        long[] offsets = new long[n + 5], lengths = new long[n + 5];   // longer than n: only n count
        for (int k = 0; k < n; k++) {
            offsets[k] = 3L * k * PAGE;
            lengths[k] = 2 * PAGE;
        }
        b.discard(offsets, lengths, n);
        for (long p = 0; p < pages; p++) {
            if (p % 3 != 2 && p < 3L * n) assertThat(NativeMemory.isZero(b.hostAddress() + p * PAGE, PAGE)).as("page %d", p).isTrue();
            else assertThat(intact(b, p)).as("page %d", p).isTrue();
        }
    }

    @Test
    void oneBadRangeInABatchDiscardsNothing() {
        RamBlock b = registry.create("ram", 8 * PAGE, PAGES * PAGE, Backing.ANONYMOUS);
        fill(b);
        long[] offsets = {0, 2 * PAGE, 7 * PAGE, 4 * PAGE}, lengths = {PAGE, PAGE, 2 * PAGE, PAGE};
        assertThatThrownBy(() -> b.discard(offsets, lengths, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("discard [" + 7 * PAGE);
        long[] unaligned = {0, PAGE + 512};
        assertThatThrownBy(() -> b.discard(unaligned, new long[] {PAGE, PAGE}, 2))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not aligned");
        for (long p = 0; p < PAGES; p++) assertThat(intact(b, p)).as("page %d", p).isTrue();
        assertThatThrownBy(() -> b.discard(offsets, lengths, 5)).isInstanceOf(IllegalArgumentException.class);
    }
}
