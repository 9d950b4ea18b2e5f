package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.Command;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Written byte for byte as a QEMU 7.2 source with the postcopy-preempt capability does it: a second
 * connection right after the main one ({@code postcopy_preempt_setup} from {@code migrate_fd_connect}),
 * silent until the first requested page in postcopy, which travels there as a bare RAM page record (be64
 * offset | flags, the block name unless CONTINUE, the page), the channel ended by EOS after the main stream's
 * EOF. The listener takes QEMU's rule ({@code qemuPreempt}): one migration at a time, the connection after its
 * main one is its channel; it places the channel's pages; a bad record there ends that migration with the codec's
 * error, naming the channel.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PostcopyPreemptChannelTest {
    static final int PAGES = 256;
    static final RamBlockInfo RAM = new RamBlockInfo(0, "pc.ram", PAGES * 4096L, 4096);
    final Endpoint dst = new Endpoint();

    @AfterEach
    void close() {
        dst.close();
    }

    static byte[] encode(StreamEncoder.Body body) throws IOException {
        return StreamEncoder.encode(body);
    }

    static ByteBuffer page(int n) {
        byte[] b = new byte[4096];
        new java.util.Random(n).nextBytes(b);
        return ByteBuffer.wrap(b);
    }

    static void write(SocketChannel c, byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) c.write(b);
    }

    /** Header, return path, advise, the block list; then every page but {@code held} in one PART. */
    static byte[] setupAndPrecopy(int... held) throws IOException {
        return setupAndPrecopy(RAM, held);
    }

    static byte[] setupAndPrecopy(RamBlockInfo ram, int... held) throws IOException {
        return encode(e -> {
            e.writeHeader().writeConfiguration("pc-i440fx-7.2");
            e.writeCommand(new Command.OpenReturnPath());
            e.writeCommand(Command.PostcopyAdvise.of(4096, 4096));
            e.writeSectionStart(SectionType.START, 2, "ram", 0, 4);
            e.writeMemSize(List.of(ram), true, 4096);
            e.writeEos().writeFooter(2);
            e.writeSectionPart(SectionType.PART, 2);
            for (int p = 0; p < PAGES; p++) {
                final int q = p;
                if (java.util.Arrays.stream(held).noneMatch(h -> h == q)) e.writePage(ram, p * 4096L, page(p), 0);
            }
            e.writeEos().writeFooter(2);
        });
    }

    /** The switch: PING 2, the package (LISTEN, PING 3, RUN), PING 4. */
    static byte[] switchToPostcopy() throws IOException {
        byte[] pkg = encode(e -> {
            e.writeCommand(new Command.PostcopyListen());
            e.writeCommand(new Command.Ping(3));
            e.writeCommand(new Command.PostcopyRun());
        });
        return encode(e -> {
            e.writeCommand(new Command.Ping(2));
            e.writePackaged(ByteBuffer.wrap(pkg));
            e.writeCommand(new Command.Ping(4));
        });
    }

    static byte[] end() throws IOException {
        return encode(e -> {
            e.writeSectionPart(SectionType.END, 2);
            e.writeEos().writeFooter(2);
            e.writeEof();
        });
    }

    IncomingMigration awaitMain(IncomingListener listener) throws InterruptedException {
        Await.until("the main connection's migration", Duration.ofSeconds(30), () -> !listener.migrations().isEmpty());
        return listener.migrations().get(0);
    }

    /** Page p of {@code b} is {@link #page}(p), for every p. */
    static void assertEveryPage(RamBlock b) {
        ByteBuffer want = ByteBuffer.allocateDirect(4096);
        for (int p = 0; p < PAGES; p++) {
            want.clear().put(page(p)).flip();
            assertThat(NativeMemory.nativeCompare(b.hostAddress() + p * 4096L, io.postcopy.codec.PageBuffers.address(want), 4096))
                    .as("page %d of %s", p, b.idstr()).isZero();
        }
    }

    static void awaitState(IncomingMigration m, MigrationState s) throws InterruptedException {
        Await.until(m.id() + " in state " + s + " or ended", Duration.ofSeconds(10), () -> m.state() == s || m.state().isFinal());
        assertThat(m.state()).as("%s", m.failure()).isEqualTo(s);
    }

    @Test
    void requestedPagesOnThePreemptChannelArePlacedAndTheMigrationCompletes() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().withQemuPreempt(true));
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()));
             SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            write(main, setupAndPrecopy(5, 7, 200));
            write(main, switchToPostcopy());
            IncomingMigration in = awaitMain(listener);
            awaitState(in, MigrationState.POSTCOPY);
            // what QEMU writes for two requested pages: the first names its block, the second continues it
            write(extra, encode(e -> {
                e.writePage(RAM, 5 * 4096L, page(5), 0);
                e.writePage(RAM, 7 * 4096L, page(7), 0);
            }));
            write(main, encode(e -> {
                e.writeSectionPart(SectionType.PART, 2);
                e.writePage(RAM, 200 * 4096L, page(200), 0);
                e.writeEos().writeFooter(2);
            }));
            write(main, end());
            write(extra, HexFormat.of().parseHex("0000000000000010"));   // EOS, after the main stream's EOF

            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(listener.migrations()).as("the extra connection is no migration of its own").containsExactly(in);
            assertThat(in.postcopyChannel()).hasValueSatisfying(s -> assertThat(s).endsWith(", 2 pages, 0 zero pages"));
            assertEveryPage(dst.registry.byName("pc.ram"));
            List<ReturnPathMessage> rp = new ArrayList<>();
            new ReturnPathDecoder((m, off) -> rp.add(m)).decode(main);
            assertThat(rp).contains(new ReturnPathMessage.Pong(3)).last().isEqualTo(new ReturnPathMessage.Shut(0));
        }
    }

    /**
     * QEMU 10.0 with its default machine type: SWITCHOVER_START (command 11) before the switch, the preempt channel
     * carries the requested pages and no EOS, and stays open until the source has our SHUT. The migration completes
     * once the main stream's EOF came and every page is here; we close the channel ourselves.
     */
    @Test
    void qemu10SwitchoverStartAndAPreemptChannelWithoutEosComplete() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().withQemuPreempt(true));
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()));
             SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            write(main, setupAndPrecopy(5, 7, 200));
            write(main, encode(e -> e.writeCommand(new Command.SwitchoverStart())));
            write(main, switchToPostcopy());
            IncomingMigration in = awaitMain(listener);
            awaitState(in, MigrationState.POSTCOPY);
            write(extra, encode(e -> {
                e.writePage(RAM, 5 * 4096L, page(5), 0);
                e.writePage(RAM, 7 * 4096L, page(7), 0);
            }));
            write(main, encode(e -> {
                e.writeSectionPart(SectionType.PART, 2);
                e.writePage(RAM, 200 * 4096L, page(200), 0);
                e.writeEos().writeFooter(2);
            }));
            write(main, end());
            // no EOS on extra: QEMU 8.0+ keeps it open until our SHUT

            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(in.postcopyChannel()).hasValueSatisfying(s -> assertThat(s).endsWith(", 2 pages, 0 zero pages"));
            assertEveryPage(dst.registry.byName("pc.ram"));
            List<ReturnPathMessage> rp = new ArrayList<>();
            new ReturnPathDecoder((m, off) -> rp.add(m)).decode(main);
            assertThat(rp).contains(new ReturnPathMessage.Pong(3)).last().isEqualTo(new ReturnPathMessage.Shut(0));
            extra.socket().setSoTimeout(5000);
            assertThat(extra.socket().getInputStream().read()).as("we closed the channel").isEqualTo(-1);
        }
    }

    /** SWITCHOVER_START where QEMU never sends it (inside the package): the migration fails naming it, SHUT 1. */
    @Test
    void switchoverStartInsideThePackageIsRefused() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            write(main, setupAndPrecopy(5));
            byte[] pkg = encode(e -> {
                e.writeCommand(new Command.PostcopyListen());
                e.writeCommand(new Command.SwitchoverStart());
                e.writeCommand(new Command.PostcopyRun());
            });
            write(main, encode(e -> e.writePackaged(ByteBuffer.wrap(pkg))));
            IncomingMigration in = awaitMain(listener);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(in.failure()).get().asString().contains("SWITCHOVER_START (command 11) inside the package");
            List<ReturnPathMessage> rp = new ArrayList<>();
            new ReturnPathDecoder((m, off) -> rp.add(m)).decode(main);
            assertThat(rp).last().isEqualTo(new ReturnPathMessage.Shut(1));
        }
    }

    /**
     * Nothing was requested (the migration converged in precopy): the source writes the channel's EOS right after
     * the main stream's EOF, which can reach us before the main thread has read LISTEN. Not a violation: the
     * channel waits for LISTEN, and the migration completes (seen in TwoInstancesIT).
     */
    @Test
    void eosOnTheChannelBeforeTheMainStreamReachedListenIsFine() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().withQemuPreempt(true));
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()));
             SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            write(main, setupAndPrecopy());
            IncomingMigration in = awaitMain(listener);
            Await.until("the connection after the main one as the postcopy channel", Duration.ofSeconds(10),
                    () -> in.postcopyChannel().isPresent());
            awaitState(in, MigrationState.PRECOPY);
            write(extra, HexFormat.of().parseHex("0000000000000010"));     // EOS, while the main stream is in precopy
            Thread.sleep(50);
            assertThat(in.state()).as("%s", in.failure()).isEqualTo(MigrationState.PRECOPY);
            write(main, switchToPostcopy());
            write(main, end());
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(in.postcopyChannel()).hasValueSatisfying(c -> assertThat(c).endsWith(", 0 pages, 0 zero pages"));
        }
    }

    /**
     * QEMU's rule serves one migration at a time: main A, its channel, then a third connection while A is live
     * is refused (closed, no migration); once A has ended, the next connection is a migration of its own.
     */
    @Test
    void underQemusRuleAThirdConnectionWhileAMigrationIsLiveIsRefused() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().withQemuPreempt(true));
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()));
             SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            write(main, setupAndPrecopy(5));
            IncomingMigration in = awaitMain(listener);
            try (SocketChannel third = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
                // closed at accept, before a byte is read: a read ends (EOF, or a reset if our bytes were unread)
                int got;
                try {
                    got = third.read(ByteBuffer.allocate(1));
                } catch (IOException reset) {
                    got = -1;
                }
                assertThat(got).as("refused").isEqualTo(-1);
            }
            write(main, switchToPostcopy());
            awaitState(in, MigrationState.POSTCOPY);
            write(extra, encode(e -> e.writePage(RAM, 5 * 4096L, page(5), 0)));
            write(main, end());
            write(extra, HexFormat.of().parseHex("0000000000000010"));
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(in.postcopyChannel().get()).startsWith(extra.getLocalAddress().toString());
            assertThat(listener.migrations()).containsExactly(in);
            assertEveryPage(dst.registry.byName("pc.ram"));
        }
        dst.registry.remove("pc.ram");
        try (SocketChannel next = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            write(next, setupAndPrecopy());
            write(next, end());
            Await.until("a second migration", Duration.ofSeconds(30), () -> listener.migrations().size() >= 2);
            IncomingMigration second = listener.migrations().get(1);
            assertThat(second.awaitCompletion(Duration.ofSeconds(10))).as("%s", second.failure()).isEqualTo(MigrationState.COMPLETED);
        }
    }

    /**
     * A migration that completed on its main stream alone, its channel still open and untied (the source writes
     * EOS there after the main stream's EOF): that EOS, or a page, is no migration of its own and no error.
     * Seen in CI: two sources into one listener, one finished within the channel's 100 ms of silence, and its
     * EOS was decoded as a stream that failed on "magic".
     */
    @Test
    void eosOnTheChannelOfAMigrationThatHasEndedIsNoMigration() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().withQemuPreempt(true));
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            write(main, setupAndPrecopy());
            write(main, end());
            IncomingMigration in = awaitMain(listener);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            try (SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
                Thread.sleep(2 * 100);     // silent long enough to be asked about: its only candidate has ended
                write(extra, HexFormat.of().parseHex("0000000000000010"));
                assertThat(extra.read(ByteBuffer.allocate(1))).as("closed by the destination").isEqualTo(-1);
            }
            assertThat(listener.migrations()).containsExactly(in);
            assertThat(in.state()).isEqualTo(MigrationState.COMPLETED);
        }
    }

    @Test
    void pageOutsideItsBlockOnThePreemptChannelEndsThatMigrationWithThePreciseError() throws Exception {
        failsOnTheChannel(encode(e -> e.writePage(new RamBlockInfo(0, "pc.ram", (PAGES + 1) * 4096L, 4096),
                        PAGES * 4096L, page(1), 0)), true,
                "postcopy-preempt channel", "offset 0", "page offset", "0x100000");
    }

    @Test
    void unknownBlockOnThePreemptChannelEndsThatMigration() throws Exception {
        failsOnTheChannel(encode(e -> e.writePage(new RamBlockInfo(0, "vga.ram", 4096, 4096), 0, page(1), 0)), true,
                "postcopy-preempt channel", "RAM record idstr", "vga.ram");
    }

    @Test
    void preemptChannelClosedWithoutEosEndsThatMigration() throws Exception {
        failsOnTheChannel(new byte[0], true, "postcopy-preempt channel", "closed by the source");
    }

    @Test
    void bytesOnThePreemptChannelBeforeListenEndThatMigration() throws Exception {
        failsOnTheChannel(encode(e -> e.writePage(RAM, 5 * 4096L, page(5), 0)), false,
                "postcopy-preempt channel", "before POSTCOPY_LISTEN");
    }

    /**
     * The channel sends {@code bytes} (after the switch if {@code afterListen}, else once tied while precopy
     * runs) and is closed: the main migration fails naming the channel, SHUT 1 goes back, the block goes
     * away, the listener carries on (a valid migration right after completes).
     */
    private void failsOnTheChannel(byte[] bytes, boolean afterListen, String... reason) throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().withQemuPreempt(true));
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            IncomingMigration in;
            try (SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
                write(main, setupAndPrecopy(5, 7));
                in = awaitMain(listener);
                if (afterListen) {
                    write(main, switchToPostcopy());
                    awaitState(in, MigrationState.POSTCOPY);
                } else {
                    // the connection after the main one: its channel, never a migration of its own
                    Await.until("the postcopy channel", Duration.ofSeconds(10), () -> in.postcopyChannel().isPresent());
                    // the main stream has read all we sent (unread bytes would make its close a reset)
                    Await.until("the main stream read all we sent", Duration.ofSeconds(10), () -> in.progress().pages() >= PAGES - 2);
                }
                write(extra, bytes);
            }
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(in.failure()).get().asString().contains(reason);
            List<ReturnPathMessage> rp = new ArrayList<>();
            new ReturnPathDecoder((m, off) -> rp.add(m)).decode(main);
            assertThat(rp).last().isEqualTo(new ReturnPathMessage.Shut(1));
            assertThat(dst.registry.byName("pc.ram")).isNull();
        }
        // the listener carries on: a migration without preempt channel right after completes
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            write(main, setupAndPrecopy());
            write(main, end());
            Await.until("a second migration", Duration.ofSeconds(30), () -> listener.migrations().size() >= 2);
            IncomingMigration second = listener.migrations().get(1);
            assertThat(second.awaitCompletion(Duration.ofSeconds(10))).as("%s", second.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(second.postcopyChannel()).isEmpty();
        }
    }

    @Test
    void aConnectionThatIsNoStreamIsRefusedAndNoMigration() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().withQemuPreempt(true));
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            c.write(ByteBuffer.wrap(HexFormat.of().parseHex("0000000000007008")));
            assertThat(c.read(ByteBuffer.allocate(1))).as("closed").isEqualTo(-1);
        }
        assertThat(listener.migrations()).isEmpty();
        // and the listener goes on
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            write(main, setupAndPrecopy());
            write(main, end());
            IncomingMigration in = awaitMain(listener);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
        }
    }
}
