package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.codec.Wire;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.workload.Workload;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 13: a stranger that connects to a listener at every moment of a live migration (before the main stream,
 * right after it, during precopy, during postcopy, after completion), sending what a channel might send (nothing,
 * a page of the migrated block as QEMU's preempt channel would, our channel magic with a guessed token, QEMU's
 * multifd magic), is never tied to the migration and never changes a byte of it.
 */
class StrangerTest {
    static final long SIZE = 32L << 20;
    final Endpoint src = new Endpoint(), dst = new Endpoint();
    final List<SocketChannel> strangers = new ArrayList<>();

    @AfterEach
    void close() throws IOException {
        for (SocketChannel s : strangers) s.close();
        src.close();
        dst.close();
    }

    /** What strangers send, one after another: silence, a page of pc.ram (all 0xee), a guessed token, multifd. */
    static byte[] payload(int kind) throws IOException {
        switch (kind % 4) {
            case 0:
                return new byte[0];
            case 1: {
                byte[] bad = new byte[4096];
                java.util.Arrays.fill(bad, (byte) 0xee);
                RamBlockInfo ram = new RamBlockInfo(0, "pc.ram", SIZE, 4096);
                return StreamEncoder.encode(e -> {
                    for (long p = 0; p < 64; p++) e.writePage(ram, p * 4096, ByteBuffer.wrap(bad), 0);
                });
            }
            case 2: {
                ByteBuffer b = ByteBuffer.allocate(4 + Wire.CHANNEL_TOKEN_BYTES).putInt(Wire.CHANNEL_MAGIC);
                byte[] guess = new byte[Wire.CHANNEL_TOKEN_BYTES];
                new java.util.Random(kind).nextBytes(guess);
                return b.put(guess).array();
            }
            default:
                return java.util.HexFormat.of().parseHex("11223344" + "00000001" + "00".repeat(56));
        }
    }

    /** The next stranger, sending the next kind of payload. */
    void stranger(int port) throws IOException {
        stranger(port, payload(strangers.size() + 1));
    }

    /** Whether the listener closed {@code s} (EOF or reset within 5 s). */
    static boolean closedByListener(SocketChannel s) throws IOException {
        s.socket().setSoTimeout(5000);
        try {
            return s.socket().getInputStream().read() == -1;
        } catch (IOException reset) {
            return true;
        }
    }

    @ParameterizedTest(name = "preempt {0}")
    @ValueSource(booleans = {true, false})
    void strangersAtEveryMomentAreNeverTiedAndChangeNothing(boolean preempt) throws Exception {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 11);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults());
        stranger(l.port());                                        // before the main stream
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()),
                OutgoingOptions.defaults().withBlocks("pc.ram").withPostcopyPreempt(preempt)
                        .withMode(MigrationMode.HYBRID).withPostcopyAfter(Duration.ofMillis(300))
                        .withMaxBandwidth(32L << 20));
        stranger(l.port());                                        // right after it
        stranger(l.port());
        Await.until("the source in PRECOPY or ended", Duration.ofSeconds(20),
                () -> out.state() == MigrationState.PRECOPY || out.state().isFinal());
        stranger(l.port());                                        // during precopy
        stranger(l.port());
        Await.until("the source in POSTCOPY or ended", Duration.ofSeconds(20),
                () -> out.state() == MigrationState.POSTCOPY || out.state().isFinal());
        assertThat(out.state()).isEqualTo(MigrationState.POSTCOPY);
        for (int i = 0; i < 4; i++) stranger(l.port());            // during postcopy
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = l.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
        stranger(l.port());                                        // after completion
        stranger(l.port());

        assertThat(l.migrations()).as("strangers are no migrations").containsExactly(in);
        if (preempt) {
            assertThat(in.postcopyChannel()).as("the source's own channel").isPresent();
            for (SocketChannel s : strangers)
                assertThat(in.postcopyChannel().get()).doesNotStartWith(s.getLocalAddress().toString());
        } else {
            assertThat(in.postcopyChannel()).isEmpty();
        }
        assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        // every stranger that spoke is closed by the listener at once (a silent one after its deadline)
        for (int i = 0; i < strangers.size(); i++) {
            if (i % 4 == 3) continue;   // index i holds payload kind i+1: kind 0 (silence) is at 3, 7, ...
            assertThat(closedByListener(strangers.get(i))).as("stranger %d closed", i).isTrue();
        }
    }

    /**
     * A listener under QEMU's rule takes the connection after the main stream as its channel without proof (QEMU
     * gives none); any connection beyond those two is refused, and one that sends QEMU's multifd magic is only noted
     * (for the reason of a QEMU migration that its source then ends), never fails the live migration.
     */
    @org.junit.jupiter.api.Test
    void multifdStrangersOnAQemuRuleListenerFailNothingButThemselves() throws Exception {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 12);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withQemuPreempt(true));
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()),
                OutgoingOptions.defaults().withBlocks("pc.ram").withPostcopyPreempt(true)
                        .withMode(MigrationMode.HYBRID).withPostcopyAfter(Duration.ofMillis(300))
                        .withMaxBandwidth(32L << 20));
        Await.until("the source in PRECOPY or ended", Duration.ofSeconds(20),
                () -> out.state() == MigrationState.PRECOPY || out.state().isFinal());
        Thread.sleep(100);     // the source's channel follows its main stream
        List<SocketChannel> multifd = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            stranger(l.port(), payload(3));
            multifd.add(strangers.get(strangers.size() - 1));
        }
        Await.until("the source in POSTCOPY or ended", Duration.ofSeconds(20),
                () -> out.state() == MigrationState.POSTCOPY || out.state().isFinal());
        for (int i = 0; i < 3; i++) stranger(l.port(), payload(3));
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = l.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
        assertThat(l.migrations()).containsExactly(in);
        assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        for (SocketChannel s : multifd) assertThat(closedByListener(s)).as("multifd stranger closed").isTrue();
    }

    void stranger(int port, byte[] payload) throws IOException {
        SocketChannel s = SocketChannel.open(new InetSocketAddress("127.0.0.1", port));
        strangers.add(s);
        ByteBuffer b = ByteBuffer.wrap(payload);
        try {
            while (b.hasRemaining()) s.write(b);
        } catch (IOException refused) {
            // closed by the listener already: what we want
        }
    }
}
