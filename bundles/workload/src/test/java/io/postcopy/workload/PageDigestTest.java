package io.postcopy.workload;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.ramblock.RamBlock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The per-page SHA-256 digest: the codec inspector's --ram-digest format. */
class PageDigestTest {
    final Blocks blocks = new Blocks();

    @AfterEach
    void tearDown() {
        blocks.close();
    }

    @Test
    void thirtyTwoBytesPerPageEachTheSha256OfThatPage() throws Exception {
        RamBlock b = blocks.create("digest", 24);
        Workload.fill(b, 4);
        blocks.put(b, 20, new byte[Blocks.PAGE]); // one zero page
        byte[] d = PageDigest.of(b);
        assertThat(d).hasSize(24 * 32);
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        for (int p = 0; p < 24; p++)
            assertThat(Arrays.copyOfRange(d, p * 32, p * 32 + 32)).as("page %d", p)
                    .isEqualTo(sha.digest(blocks.bytes(b, p)));
        assertThat(HexFormat.of().formatHex(d, 20 * 32, 21 * 32))
                .isEqualTo("ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7");
    }

    @Test
    void compareFindsTheOneChangedPage() {
        RamBlock b = blocks.create("cmp", 40);
        Workload.fill(b, 9);
        byte[] before = PageDigest.of(b);
        assertThat(PageDigest.compare(before, PageDigest.of(b))).isEqualTo(new DigestComparison(40, 0, -1));
        byte[] page = blocks.bytes(b, 33);
        page[17] ^= (byte) 0x80;
        blocks.put(b, 33, page);
        DigestComparison c = PageDigest.compare(before, PageDigest.of(b));
        assertThat(c).isEqualTo(new DigestComparison(40, 1, 33));
        assertThat(c.equal()).isFalse();
    }

    @Test
    void pagesOnlyOneSideHasAreMismatches() {
        byte[] a = new byte[10 * 32], b = new byte[12 * 32];
        assertThat(PageDigest.compare(a, b)).isEqualTo(new DigestComparison(12, 2, 10));
        assertThat(PageDigest.compare(b, a)).isEqualTo(new DigestComparison(12, 2, 10));
        b[3 * 32 + 5] = 1;
        assertThat(PageDigest.compare(a, b)).isEqualTo(new DigestComparison(12, 3, 3));
        assertThatThrownBy(() -> PageDigest.compare(new byte[33], a)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("33 bytes");
    }

    @Test
    void writeStoresTheDigestAsIs(@TempDir Path dir) throws Exception {
        RamBlock b = blocks.create("file", 8);
        Workload.fill(b, 1);
        Path f = dir.resolve("file.sha256");
        PageDigest.write(b, f);
        assertThat(Files.readAllBytes(f)).isEqualTo(PageDigest.of(b));
        assertThat(PageDigest.read(f)).hasSize(8 * 32);
    }

    @Test
    void sameContentSameDigestAcrossBlocks() {
        RamBlock x = blocks.create("x", 16), y = blocks.create("y", 16);
        Workload.fill(x, 6);
        Workload.fill(y, 6);
        assertThat(PageDigest.of(x)).isEqualTo(PageDigest.of(y));
        Workload.fill(y, 7);
        assertThat(PageDigest.compare(PageDigest.of(x), PageDigest.of(y)).mismatched()).isEqualTo(16);
    }
}
