package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.Command;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.testkit.Await;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 13, limits: every size a peer announces, every connection and every wait is bounded before anything is
 * allocated for it. Each hostile stream (built with the codec) is refused with a clear message, leaves no block,
 * thread or descriptor behind, and a valid migration on the same listener right after succeeds.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LimitsTest {
    static final long PAGE = 4096;
    Endpoint dst;

    @AfterEach
    void close() {
        if (dst != null) dst.close();
    }

    IncomingListener listen(Map<String, ?> config) {
        dst = new Endpoint(config);
        return dst.service.listen(null, IncomingOptions.defaults());
    }

    /** Header, return path, advise, the block list. */
    static byte[] setup(RamBlockInfo... blocks) throws IOException {
        return StreamEncoder.encode(e -> {
            e.writeHeader().writeConfiguration("pc");
            e.writeCommand(new Command.OpenReturnPath());
            long summary = 0;
            for (RamBlockInfo b : blocks) summary |= b.pageSize();
            e.writeCommand(Command.PostcopyAdvise.of(summary, 4096));
            e.writeSectionStart(SectionType.START, 2, "ram", 0, 4);
            e.writeMemSize(List.of(blocks), true, 4096);
            e.writeEos().writeFooter(2);
        });
    }

    /** A whole valid precopy stream of one 1 MiB block, every page 0x5a. */
    static byte[] valid() throws IOException {
        RamBlockInfo ram = new RamBlockInfo(0, "ok.ram", 1 << 20, 4096);
        byte[] page = new byte[4096];
        java.util.Arrays.fill(page, (byte) 0x5a);
        byte[] start = setup(ram);
        byte[] rest = StreamEncoder.encode(e -> {
            e.writeSectionPart(SectionType.PART, 2);
            for (long p = 0; p < 256; p++) e.writePage(ram, p * PAGE, ByteBuffer.wrap(page), 0);
            e.writeEos().writeFooter(2);
            e.writeSectionPart(SectionType.END, 2);
            e.writeEos().writeFooter(2);
            e.writeEof();
        });
        byte[] all = java.util.Arrays.copyOf(start, start.length + rest.length);
        System.arraycopy(rest, 0, all, start.length, rest.length);
        return all;
    }

    static void write(SocketChannel c, byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) c.write(b);
    }

    /** Sends {@code stream} on a new connection (kept open), and returns the migration it became. */
    static IncomingMigration send(IncomingListener l, SocketChannel c, byte[] stream) throws Exception {
        int before = l.migrations().size();
        write(c, stream);
        Await.until("the connection's migration", Duration.ofSeconds(10), () -> l.migrations().size() > before);
        return l.migrations().get(before);
    }

    static Set<String> ourThreads() {
        return Thread.getAllStackTraces().keySet().stream().map(Thread::getName)
                .filter(n -> n.startsWith("postcopy-") && !n.startsWith("postcopy-listen-") && !n.equals("postcopy-deadlines"))
                .collect(Collectors.toSet());
    }

    /** TCP sockets, userfaultfd/eventfd/epoll (anonymous inodes) and memfds open in this JVM: what a migration opens. */
    static long openFds() {
        return fdList().size();
    }

    static List<String> fdList() {
        java.util.Set<String> tcp = new java.util.HashSet<>();
        for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            try {
                for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of(table))) {
                    String[] f = line.trim().split("\\s+");
                    if (f.length > 9) tcp.add("socket:[" + f[9] + "]");
                }
            } catch (IOException ignored) {
                // no such table
            }
        }
        List<String> l = new ArrayList<>();
        java.io.File[] fds = new java.io.File("/proc/self/fd").listFiles();
        if (fds == null) return l;
        for (java.io.File f : fds) {
            try {
                String target = java.nio.file.Files.readSymbolicLink(f.toPath()).toString();
                if (tcp.contains(target) || target.startsWith("anon_inode:") || target.startsWith("/memfd:"))
                    l.add(f.getName() + "->" + target);
            } catch (IOException gone) {
                // closed while we looked
            }
        }
        return l;
    }

    /** Nothing left of a refused migration, and the listener serves the next one. */
    void nothingLeftAndTheNextMigrationSucceeds(IncomingListener l, long fdsBefore) throws Exception {
        assertThat(dst.registry.blocks()).isEmpty();
        assertThat(dst.faults.incoming()).isEmpty();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while ((!ourThreads().isEmpty() || openFds() > fdsBefore) && System.nanoTime() < deadline) Thread.sleep(10);
        assertThat(ourThreads()).as("no thread of the refused migration").isEmpty();
        assertThat(openFds()).as("no descriptor of the refused migration: %s", fdList()).isLessThanOrEqualTo(fdsBefore);
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
            IncomingMigration ok = send(l, c, valid());
            assertThat(ok.awaitCompletion(Duration.ofSeconds(10))).as("%s", ok.failure()).isEqualTo(MigrationState.COMPLETED);
        }
        dst.registry.remove("ok.ram");
    }

    static void assertShut1(SocketChannel c) throws IOException {
        List<ReturnPathMessage> rp = new ArrayList<>();
        try {
            new ReturnPathDecoder((m, off) -> rp.add(m)).decode(c);
        } catch (IOException reset) {
            // the refusal closed the connection under bytes still unread
        }
        if (!rp.isEmpty()) assertThat(rp).last().isEqualTo(new ReturnPathMessage.Shut(1));
    }

    @Test
    void aBlockListBiggerThanTheHostCanGiveIsRefusedBeforeAnyBlockOrBitmap() throws Exception {
        IncomingListener l = listen(Map.of());
        long fds = openFds();
        long heapBefore = usedHeap();
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
            // two 16 TiB blocks in ~100 bytes: the memory bomb of issue 13
            IncomingMigration in = send(l, c, setup(new RamBlockInfo(0, "bomb0", 16L << 40, 4096),
                    new RamBlockInfo(1, "bomb1", 16L << 40, 4096)));
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(in.failure()).get().asString()
                    .startsWith("the block list announces 33554432 MiB of RAM; one migration may have ")
                    .contains("MemAvailable");
            assertShut1(c);
        }
        assertThat(usedHeap() - heapBefore).as("no page bitmaps for 32 TiB (that would be 2 GiB of heap)")
                .isLessThan(256L << 20);
        nothingLeftAndTheNextMigrationSucceeds(l, fds);
    }

    static long usedHeap() {
        Runtime r = Runtime.getRuntime();
        return r.totalMemory() - r.freeMemory();
    }

    @Test
    void theConfiguredPerMigrationLimitHolds() throws Exception {
        IncomingListener l = listen(Map.of("maxMigrationRamMiB", 4));
        long fds = openFds();
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
            IncomingMigration in = send(l, c, setup(new RamBlockInfo(0, "big", 8L << 20, 4096)));
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(in.failure()).hasValue("the block list announces 8 MiB of RAM; one migration may have 4 MiB (maxMigrationRamMiB)");
        }
        nothingLeftAndTheNextMigrationSucceeds(l, fds);
    }

    @Test
    void liveMigrationsTogetherStayWithinTheTotal() throws Exception {
        IncomingListener l = listen(Map.of("maxIncomingRamMiB", 6));
        try (SocketChannel first = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()));
             SocketChannel second = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
            IncomingMigration a = send(l, first, setup(new RamBlockInfo(0, "a", 4L << 20, 4096)));
            // admitted, holds 4 MiB not yet received
            Await.until("block a created", Duration.ofSeconds(30), () -> dst.registry.byName("a") != null);
            long fds = openFds();
            IncomingMigration b = send(l, second, setup(new RamBlockInfo(0, "b", 4L << 20, 4096)));
            assertThat(b.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(b.failure()).hasValue("the block list announces 4 MiB of RAM; with the 4 MiB that live incoming "
                    + "migrations still need that is more than 6 MiB (maxIncomingRamMiB)");
            assertThat(a.state().isFinal()).as("the first one goes on").isFalse();
            assertThat(dst.registry.byName("b")).isNull();
            first.close();
            assertThat(a.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            nothingLeftAndTheNextMigrationSucceeds(l, fds);
        }
    }

    @Test
    void hugePageBlocksBeyondTheFreeHugePagesAreRefused() throws Exception {
        IncomingListener l = listen(Map.of());
        long fds = openFds();
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
            IncomingMigration in = send(l, c, setup(new RamBlockInfo(0, "huge", 1L << 40, 2 << 20)));
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(in.failure()).get().asString().startsWith("the block list announces 1048576 MiB of huge-page RAM; ")
                    .endsWith(" of huge pages are free");
        }
        nothingLeftAndTheNextMigrationSucceeds(l, fds);
    }

    @Test
    void connectionsBeyondTheCapAreClosedAtAccept() throws Exception {
        IncomingListener l = listen(Map.of("maxConnectionsPerListener", 3, "firstBytesTimeoutMillis", 60_000));
        long fds = openFds();
        List<SocketChannel> silent = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) silent.add(SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port())));
            Thread.sleep(100);
            try (SocketChannel fourth = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
                fourth.socket().setSoTimeout(5000);
                assertThat(fourth.socket().getInputStream().read()).as("closed at accept").isEqualTo(-1);
            }
        } finally {
            for (SocketChannel s : silent) s.close();
        }
        assertThat(l.migrations()).isEmpty();
        nothingLeftAndTheNextMigrationSucceeds(l, fds);
    }

    @Test
    void aConnectionSilentPastTheFirstBytesDeadlineIsClosed() throws Exception {
        IncomingListener l = listen(Map.of("firstBytesTimeoutMillis", 300));
        long fds = openFds();
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
            long t0 = System.nanoTime();
            c.socket().setSoTimeout(10_000);
            assertThat(c.socket().getInputStream().read()).isEqualTo(-1);
            assertThat(System.nanoTime() - t0).isGreaterThan(TimeUnit.MILLISECONDS.toNanos(250));
        }
        assertThat(l.migrations()).isEmpty();
        nothingLeftAndTheNextMigrationSucceeds(l, fds);
    }

    @Test
    void aStreamWithoutItsBlockListWithinTheHandshakeDeadlineFails() throws Exception {
        IncomingListener l = listen(Map.of("handshakeTimeoutMillis", 400));
        long fds = openFds();
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
            IncomingMigration in = send(l, c, StreamEncoder.encode(e -> e.writeHeader().writeConfiguration("pc")));
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(in.failure()).hasValue("no block list within 400 ms (handshakeTimeoutMillis)");
        }
        nothingLeftAndTheNextMigrationSucceeds(l, fds);
    }

    @Test
    void deviceStateBeyondItsTotalFailsTheMigration() throws Exception {
        IncomingListener l = listen(Map.of("maxDeviceStateMiB", 1));
        long fds = openFds();
        RamBlockInfo ram = new RamBlockInfo(0, "dev.ram", 1 << 20, 4096);
        // one package (well within maxPackageSize) holding two device sections of 700 KiB each, as our source
        // frames them (be32 length, body): together more than the 1 MiB this migration may send
        java.io.ByteArrayOutputStream bos = new java.io.ByteArrayOutputStream();
        for (int sid = 3; sid <= 4; sid++) {
            final int id = sid;
            bos.write(StreamEncoder.encode(e -> e.writeSectionStart(SectionType.FULL, id, "blob", id, 1)));
            bos.write(new byte[] {0, 0x0a, (byte) 0xf0, 0});     // 700 KiB
            bos.write(new byte[700 * 1024]);
            bos.write(StreamEncoder.encode(e -> e.writeFooter(id)));
        }
        byte[] pkg = bos.toByteArray();
        byte[] stream = StreamEncoder.encode(e -> {
            e.writeHeader().writeConfiguration("pc");
            e.writeCommand(new Command.OpenReturnPath());
            e.writeSectionStart(SectionType.START, 2, "ram", 0, 4);
            e.writeMemSize(List.of(ram), false, 4096);
            e.writeEos().writeFooter(2);
            e.writePackaged(ByteBuffer.wrap(pkg));
        });
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
            IncomingMigration in = send(l, c, stream);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(in.failure()).get().asString().startsWith("device state: ").endsWith("bytes in all, more than maxDeviceStateMiB 1 MiB");
        }
        nothingLeftAndTheNextMigrationSucceeds(l, fds);
    }
}
