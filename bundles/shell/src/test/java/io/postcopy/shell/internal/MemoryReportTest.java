package io.postcopy.shell.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.Errno;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.UffdException;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MemoryReportTest {
    private static final long HUNDRED_TIB = 100L << 40;

    /** A real 100 TiB request, mapped as an anon block is: the kernel refuses it, and the report says why. */
    @Test
    void aRealHugeRequestIsExplained() {
        UffdException e = catchThrowableOfType(() -> NativeMemory.munmap(NativeMemory.mmap(HUNDRED_TIB,
                NativeMemory.PROT_READ | NativeMemory.PROT_WRITE,
                NativeMemory.MAP_PRIVATE | NativeMemory.MAP_ANONYMOUS | NativeMemory.MAP_NORESERVE, -1, 0), HUNDRED_TIB),
                UffdException.class);
        assertThat(e).as("this host refuses 100 TiB").isNotNull();
        assertThat(e.errno()).isEqualTo(Errno.ENOMEM);
        MemoryReport.Host h = MemoryReport.read();
        assertThat(h.get("MemAvailable")).isPositive();
        assertThat(h.largestFreeRange()).isPositive().isLessThan(HUNDRED_TIB);
        String why = MemoryReport.whyNot("x", HUNDRED_TIB, RamBlock.Backing.ANONYMOUS, h);
        System.out.println(why);
        assertThat(why).startsWith("not enough memory for block \"x\" of 100 TiB (anonymous): the kernel refused the mapping (ENOMEM). "
                + "This host: MemAvailable ");
        assertThat(why).contains("; vm.overcommit_memory=" + h.overcommit() + " (", "; CommitLimit ", ", Committed_AS ",
                "the largest free range of this JVM's address space: ");
        // MAP_NORESERVE: no commit charge in modes 0 and 1, so what refuses 100 TiB here is the address space
        if (h.overcommit() != 2) assertThat(why).contains("Limit: address space: no free range");
        assertThat(why).doesNotContain("\n");
    }

    @Test
    void strictOvercommitNamesTheHeadroom() {
        MemoryReport.Host h = new MemoryReport.Host(Map.of("MemTotal", 8L << 30, "MemAvailable", 6L << 30, "SwapTotal", 0L,
                "CommitLimit", 4L << 30, "Committed_AS", 3L << 30), 2, 50, 100L << 40, 0);
        assertThat(MemoryReport.whyNot("g", 2L << 30, RamBlock.Backing.ANONYMOUS, h))
                .contains("vm.overcommit_memory=2 (strict")
                .contains("Limit: strict overcommit: at most CommitLimit - Committed_AS = 1 GiB more can be committed");
    }

    @Test
    void hugetlbNamesTheFreeHugePages() {
        MemoryReport.Host h = new MemoryReport.Host(Map.of("MemTotal", 8L << 30, "MemAvailable", 6L << 30, "SwapTotal", 0L,
                "CommitLimit", 4L << 30, "Committed_AS", 3L << 30, "HugePages_Free", 4L, "Hugepagesize", 2L << 20), 0, 50,
                100L << 40, 0);
        assertThat(MemoryReport.whyNot("h", 1L << 30, RamBlock.Backing.HUGETLB, h))
                .contains("free huge pages 8 MiB").contains("Limit: free huge pages (8 MiB); reserve more with vm.nr_hugepages.");
    }
}
