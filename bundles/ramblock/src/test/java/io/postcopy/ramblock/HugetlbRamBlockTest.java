package io.postcopy.ramblock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.ramblock.RamBlock.Backing;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Hugetlb blocks need reserved huge pages: reserved here and given back afterwards. */
class HugetlbRamBlockTest {
    private static final Path NR_HUGEPAGES = Path.of("/proc/sys/vm/nr_hugepages");
    private static final int NEEDED = 4;
    private static String oldValue;

    @BeforeAll
    static void reserveHugePages() throws IOException {
        long free = NativeMemory.hugePagesFree();
        if (NativeMemory.hugePageSize() > 0 && free < NEEDED && Files.isWritable(NR_HUGEPAGES)) {
            oldValue = Files.readString(NR_HUGEPAGES).trim();
            try {
                Files.writeString(NR_HUGEPAGES, String.valueOf(Long.parseLong(oldValue) + NEEDED - free));
            } catch (IOException e) {
                System.err.println("!!! cannot write " + NR_HUGEPAGES + ": " + e);
            }
        }
        boolean ok = NativeMemory.hugePageSize() > 0 && NativeMemory.hugePagesFree() >= NEEDED;
        if (!ok) System.err.println("\n!!!!!! HUGETLB RAM BLOCK TESTS SKIPPED: cannot reserve " + NEEDED
                + " huge pages (size " + NativeMemory.hugePageSize() + ", free " + NativeMemory.hugePagesFree()
                + "); run as root on a kernel with huge pages !!!!!!\n");
        Assumptions.assumeTrue(ok, "huge pages cannot be reserved on this machine");
    }

    @AfterAll
    static void restoreHugePages() throws IOException {
        if (oldValue != null) Files.writeString(NR_HUGEPAGES, oldValue);
    }

    @Test
    void hugetlbBlockUsesHugePagesAndDiscardsWholeHugePages() {
        long huge = NativeMemory.hugePageSize();
        RamBlockRegistry registry = RamBlocks.newRegistry();
        try {
            registry.create("small", NativeMemory.pageSize(), Backing.ANONYMOUS);
            RamBlock b = registry.create("pc.ram", 2 * huge, Backing.HUGETLB);
            assertThat(b.pageSize()).isEqualTo(huge);
            assertThat(b.offset() % huge).as("offset aligned to the block's page size").isZero();
            assertThat(b.offset()).isEqualTo(huge);
            assertThat(b.hostAddress() % huge).isZero();
            assertThat(b.fd()).isGreaterThan(2);
            assertThat(registry.blockOf(b.hostAddress() + huge + 12345)).isSameAs(b);

            NativeMemory.fill(b.hostAddress(), 2 * huge, (byte) 0x5a);
            assertThatThrownBy(() -> b.discard(0, NativeMemory.pageSize()))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not aligned");
            b.discard(huge, huge);
            assertThat(NativeMemory.isZero(b.hostAddress() + huge, huge)).isTrue();
            assertThat(NativeMemory.getByte(b.hostAddress() + huge - 1)).isEqualTo((byte) 0x5a);
            assertThatThrownBy(() -> registry.create("odd", huge + NativeMemory.pageSize(), Backing.HUGETLB))
                    .isInstanceOf(IllegalArgumentException.class);
        } finally {
            registry.removeAll();
        }
        assertThat(NativeMemory.hugePagesFree()).isGreaterThanOrEqualTo(NEEDED);
    }
}
