package io.postcopy.uffd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** madvise of many ranges in few system calls (process_madvise on this process), on the real kernel. */
class MadviseBatchTest {
    private static final long PAGE = NativeMemory.pageSize();

    @Test
    void dontneedOfManyRangesDropsExactlyThemInBatchesOnThisKernel() {
        int pages = 5000, n = pages / 2;                  // 2,500 single pages: three calls of at most 1,024
        try (Mapping m = Mapping.anonymous(pages * PAGE)) {
            NativeMemory.fill(m.address(), pages * PAGE, (byte) 7);
            long[] addrs = new long[n], lengths = new long[n];
            for (int i = 0; i < n; i++) {
                addrs[i] = m.address() + 2L * i * PAGE;
                lengths[i] = PAGE;
            }
            NativeMemory.madvise(addrs, lengths, n, NativeMemory.MADV_DONTNEED);
            for (int p = 0; p < pages; p++) {
                long a = m.address() + p * PAGE;
                if (p % 2 == 0) assertThat(NativeMemory.isZero(a, PAGE)).as("page %d", p).isTrue();
                else assertThat(NativeMemory.getByte(a) == 7 && NativeMemory.getByte(a + PAGE - 1) == 7).as("page %d", p).isTrue();
            }
        }
        String[] v = System.getProperty("os.version").split("[.-]");
        boolean since613 = Integer.parseInt(v[0]) > 6 || (Integer.parseInt(v[0]) == 6 && Integer.parseInt(v[1]) >= 13);
        if (since613) assertThat(NativeMemory.madviseBatches()).as("process_madvise on Linux %s", System.getProperty("os.version")).isTrue();
        else System.err.println("MadviseBatchTest: Linux " + System.getProperty("os.version") + " < 6.13: one madvise per range was used");
    }

    @Test
    void aRangeTheKernelRefusesIsReportedWithTheCall() {
        try (Mapping m = Mapping.anonymous(4 * PAGE)) {
            long[] addrs = {m.address(), m.address() + 512}, lengths = {PAGE, PAGE};    // the second is unaligned
            assertThatThrownBy(() -> NativeMemory.madvise(addrs, lengths, 2, NativeMemory.MADV_DONTNEED))
                    .isInstanceOf(UffdException.class).hasMessageContaining("madvise");
        }
    }
}
