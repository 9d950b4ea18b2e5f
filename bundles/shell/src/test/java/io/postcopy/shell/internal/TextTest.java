package io.postcopy.shell.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import org.junit.jupiter.api.Test;

class TextTest {
    @Test
    void pluralsAreRight() {
        assertThat(Text.count(1, "range")).isEqualTo("1 range");
        assertThat(Text.count(2, "range")).isEqualTo("2 ranges");
        assertThat(Text.count(0, "block")).isEqualTo("0 blocks");
        assertThat(Text.count(1, "precopy pass")).isEqualTo("1 precopy pass");
        assertThat(Text.count(3, "precopy pass")).isEqualTo("3 precopy passes");
    }

    /** What a real wildcard bind reports (Java's dual-stack socket says 0:0:0:0:0:0:0:0) prints as 0.0.0.0. */
    @Test
    void aWildcardBindPrintsAsZeros() throws Exception {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress("0.0.0.0", 0));
            InetSocketAddress bound = (InetSocketAddress) s.getLocalSocketAddress();
            assertThat(Text.address(bound)).isEqualTo("0.0.0.0:" + s.getLocalPort());
            assertThat(Text.address(bound.toString())).isEqualTo("0.0.0.0:" + s.getLocalPort());
        }
        assertThat(Text.address(new InetSocketAddress(InetAddress.getByName("::"), 80))).isEqualTo("0.0.0.0:80");
    }

    @Test
    void addressesWithoutTheResolversSlash() throws Exception {
        InetSocketAddress loop = new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 4444);
        assertThat(loop.toString()).isEqualTo("/127.0.0.1:4444");   // what the migration API's peer() used to be
        assertThat(Text.address(loop)).isEqualTo("127.0.0.1:4444");
        assertThat(Text.address(loop.toString())).isEqualTo("127.0.0.1:4444");
        assertThat(Text.address("dst1.example/10.0.0.5:4444")).isEqualTo("dst1.example:4444");
        assertThat(Text.address("10.0.0.5:4444")).isEqualTo("10.0.0.5:4444");
        assertThat(Text.address(new InetSocketAddress(InetAddress.getByName("::1"), 4444))).isEqualTo("[::1]:4444");
        assertThat(Text.address("/0:0:0:0:0:0:0:1:4444")).isEqualTo("[::1]:4444");
        assertThat(Text.compact("fe80:0:0:0:1:0:0:2")).isEqualTo("fe80::1:0:0:2");
    }

    @Test
    void noColoursWithoutASession() {
        assertThat(Text.colours(null)).isFalse();
    }

    @Test
    void theWaitingPeersPreemptChannelReadsAsWritten() {
        assertThat(MigrationReport.leadingAddress("/127.0.0.1:50078, 1898 pages, 0 zero pages"))
                .isEqualTo("127.0.0.1:50078, 1898 pages, 0 zero pages");
        assertThat(MigrationReport.leadingAddress("- (none yet)")).isEqualTo("- (none yet)");
    }
}
