package io.postcopy.uffd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A 2 MiB hugetlb page placed by one UFFDIO_COPY. The test reserves huge pages through
 * /proc/sys/vm/nr_hugepages and restores the old value; when it cannot, it says so loudly and skips
 * (the 4 KiB paths are covered by {@link UserfaultfdTest} regardless).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HugetlbCopyTest {
    static final Path NR = Path.of("/proc/sys/vm/nr_hugepages");
    static String saved;

    @BeforeAll
    static void reserve() throws Exception {
        long huge = NativeMemory.hugePageSize();
        String why = null;
        if (huge == 0) {
            why = "the kernel has no huge pages";
        } else {
            try {
                saved = Files.readString(NR).trim();
                long want = Long.parseLong(saved) + 4;
                Files.writeString(NR, Long.toString(want));
                if (NativeMemory.hugePagesFree() < 2) why = "could not reserve huge pages (HugePages_Free=" + NativeMemory.hugePagesFree() + ")";
            } catch (Exception e) {
                why = "cannot write " + NR + ": " + e;
            }
        }
        if (why != null) System.err.println("\n*** SKIPPING hugetlb UFFDIO_COPY test: " + why + " ***\n");
        Assumptions.assumeTrue(why == null, why);
    }

    @AfterAll
    static void restore() throws Exception {
        if (saved != null) Files.writeString(NR, saved);
    }

    @Test
    void copiesOneHugePageAtomically() throws Exception {
        long huge = NativeMemory.hugePageSize();
        try (Userfaultfd uffd = Userfaultfd.open(); Mapping m = Mapping.hugetlb("hugetlb-test", 2 * huge)) {
            uffd.api(EnumSet.of(UffdFeature.MISSING_HUGETLBFS));
            assertThat(m.pageSize()).isEqualTo(huge);
            assertThat(uffd.register(m.address(), m.length(), EnumSet.of(RegisterMode.MISSING)))
                    .contains(UffdIoctl.COPY).doesNotContain(UffdIoctl.ZEROPAGE);
            long src = NativeMemory.allocate(huge);
            try {
                for (long o = 0; o < huge; o += 8) NativeMemory.putLong(src + o, o * 31 + 7);
                UserfaultfdTest.Reader r = new UserfaultfdTest.Reader(m.address() + huge + 8192);
                r.start();
                try (UffdMessages msgs = new UffdMessages(4)) {
                    assertThat(UserfaultfdTest.awaitFaults(uffd, msgs, 1)).containsExactly(m.address() + huge);
                }
                assertThat(uffd.copy(m.address() + huge, src, huge, 0)).isEqualTo(huge);
                assertThat(r.finished(5000)).isTrue();
                assertThat(NativeMemory.nativeCompare(m.address() + huge, src, huge)).isZero();
                assertThat(uffd.copy(m.address() + huge, src, huge, 0)).isEqualTo(Userfaultfd.EXISTS);
                // a hole punched in the file makes the page missing again
                m.discard(huge, huge);
                assertThat(uffd.copy(m.address() + huge, src, huge, 0)).isEqualTo(huge);
            } finally {
                NativeMemory.free(src);
            }
        }
    }
}
