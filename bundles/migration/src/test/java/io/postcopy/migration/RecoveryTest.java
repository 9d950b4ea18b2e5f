package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Postcopy recovery, our source to our destination (issue 12): a connection lost while the destination runs the
 * guest pauses both sides instead of failing them; the source resumes over a new connection, the destination
 * answers with what it has received, the rest is sent again; five cut/resume cycles in one migration, with and
 * without the preempt channel, end with every page equal and no wrong read by the guest.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RecoveryTest {
    static final long SIZE = 64L << 20;
    final Endpoint src = new Endpoint(), dst = new Endpoint();
    final AtomicReference<Workload> reader = new AtomicReference<>();

    @AfterEach
    void close() {
        src.close();
        dst.close();
    }

    /** Forwards every connection to the listener; {@link #cut()} closes the ones open now, and it goes on accepting. */
    static final class Proxy implements AutoCloseable {
        final ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
        final List<SocketChannel> open = new CopyOnWriteArrayList<>();
        /** While set, bytes are read and dropped: a partition with no reset and no FIN. */
        volatile boolean frozen;

        Proxy(int targetPort) throws IOException {
            Thread t = new Thread(() -> {
                try {
                    for (;;) {
                        SocketChannel a = server.accept();
                        SocketChannel b = SocketChannel.open(new InetSocketAddress("127.0.0.1", targetPort));
                        open.add(a);
                        open.add(b);
                        pump(a, b);
                        pump(b, a);
                    }
                } catch (IOException closed) {
                    // the proxy is closed
                }
            });
            t.setDaemon(true);
            t.start();
        }

        void pump(SocketChannel from, SocketChannel to) {
            Thread t = new Thread(() -> {
                ByteBuffer buf = ByteBuffer.allocateDirect(64 * 1024);
                try {
                    while (from.read(buf) >= 0) {
                        buf.flip();
                        if (!frozen) while (buf.hasRemaining()) to.write(buf);
                        buf.clear();
                    }
                } catch (IOException cut) {
                    // cut
                }
                // a partition passes no FIN either: the far side is closed only by cut()
                closeQuietly(from);
                if (!frozen) closeQuietly(to);
            });
            t.setDaemon(true);
            t.start();
        }

        void cut() {
            for (SocketChannel c : open) closeQuietly(c);
            open.clear();
            frozen = false;
        }

        InetSocketAddress address() throws IOException {
            return (InetSocketAddress) server.getLocalAddress();
        }

        static void closeQuietly(SocketChannel c) {
            try {
                c.close();
            } catch (IOException ignored) {
                // closing
            }
        }

        @Override
        public void close() {
            cut();
            try {
                server.close();
            } catch (IOException ignored) {
                // closing
            }
        }
    }

    /**
     * {@code maxBandwidth} still holds after a resume: the resumed connection writes through a new encoder, and the
     * pacer used to compare its byte count with the old one's (the stream then ran unpaced until it caught up).
     */
    @org.junit.jupiter.api.Test
    void pacingHoldsAfterAResume() throws Exception {
        long rate = 16L << 20;
        RamBlock ram = src.registry.create("pc.ram", 32L << 20, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 13);                       // no zero pages: every page is 4 KiB on the wire
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults());
        try (Proxy proxy = new Proxy(l.port())) {
            OutgoingMigration out = src.service.migrate(proxy.address(), OutgoingOptions.defaults().withBlocks("pc.ram")
                    .withPostcopyPreempt(false).withMaxBandwidth(rate));
            awaitState(out, MigrationState.POSTCOPY);
            Await.until("the incoming migration", Duration.ofSeconds(30), () -> !l.migrations().isEmpty());
            IncomingMigration in = l.migrations().get(0);
            awaitState(in, MigrationState.POSTCOPY);
            Thread.sleep(300);
            proxy.cut();
            awaitState(out, MigrationState.POSTCOPY_PAUSED);
            awaitState(in, MigrationState.POSTCOPY_PAUSED);
            out.resume(proxy.address());
            awaitState(out, MigrationState.POSTCOPY);
            long t0 = System.nanoTime();
            long remaining = in.progress().remainingPages() * 4096L;
            assertThat(out.awaitCompletion(Duration.ofSeconds(60))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf("pacing after a resume: %d MiB in %.2f s (%.1f MiB/s, max %d MiB/s)%n", remaining >> 20,
                    seconds, remaining / seconds / (1 << 20), rate >> 20);
            assertThat(remaining).as("pages left for after the resume").isGreaterThan(8L << 20);
            // the pacer lets the stream run at most 1 ms ahead; no guest reads here, so no requested page bypasses it
            assertThat(seconds).as("%d bytes after the resume at %d B/s", remaining, rate)
                    .isGreaterThanOrEqualTo((double) remaining / rate - 0.1);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        }
    }

    static void awaitState(Migration m, MigrationState s) throws InterruptedException {
        Await.until(m.id() + " in state " + s + " or ended", Duration.ofSeconds(20), () -> m.state() == s || m.state().isFinal());
        assertThat(m.state()).as("%s: %s", m.id(), m.failure()).isEqualTo(s);
    }

    @ParameterizedTest(name = "preempt {0}")
    @ValueSource(booleans = {true, false})
    void fiveCutsAndResumesInOneMigrationLoseNothing(boolean preempt) throws Exception {
        cutsAndResumes(preempt, null, null);
    }

    /** The same over TLS: the resumed connection and the new preempt channel each do their own handshake. */
    @org.junit.jupiter.api.Test
    void overTls(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        TestCredentials ca = new TestCredentials("recovery CA");
        java.nio.file.Path server = ca.dir(tmp, "server", "server", ca.issue("CN=destination", "127.0.0.1"));
        java.nio.file.Path client = ca.dir(tmp, "client", "client", ca.issue("CN=source"));
        cutsAndResumes(true, TlsOptions.of(server), TlsOptions.of(client));
    }

    private void cutsAndResumes(boolean preempt, TlsOptions serverTls, TlsOptions clientTls) throws Exception {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 31);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withTls(serverTls).withGuest(dst.readerGuest("pc.ram", reader,
                WorkloadOptions.builder().threads(2).ratePerThread(500).checkReads(true).build())));
        try (Proxy proxy = new Proxy(l.port())) {
            OutgoingMigration out = src.service.migrate(proxy.address(), OutgoingOptions.defaults().withBlocks("pc.ram")
                    .withPostcopyPreempt(preempt).withMaxBandwidth(6L << 20).withTls(clientTls));
            awaitState(out, MigrationState.POSTCOPY);
            Await.until("the incoming migration", Duration.ofSeconds(30), () -> !l.migrations().isEmpty());
            IncomingMigration in = l.migrations().get(0);
            awaitState(in, MigrationState.POSTCOPY);
            // POSTCOPY begins at LISTEN; the guest (and its reader) only at RUN, which a loaded host may take longer
            // to reach than the first cut's 150 ms
            Await.until("the destination's guest resumed at RUN", Duration.ofSeconds(20), () -> reader.get() != null);
            assertThatThrownBy(() -> out.resume(proxy.address())).isInstanceOf(IllegalStateException.class);
            for (int cycle = 1; cycle <= 5; cycle++) {
                Thread.sleep(150);
                long missing = in.progress().remainingPages();
                long t0 = System.nanoTime();
                proxy.cut();
                awaitState(out, MigrationState.POSTCOPY_PAUSED);
                awaitState(in, MigrationState.POSTCOPY_PAUSED);
                long paused = System.nanoTime();
                assertThat(out.reason()).hasValueSatisfying(r -> assertThat(r).endsWith("; waiting for resume"));
                assertThat(in.reason()).hasValueSatisfying(r -> assertThat(r).endsWith("; waiting for the source to resume"));
                assertThat(out.failure()).isEmpty();
                long readsPaused = reader.get().reads();
                Thread.sleep(100);
                // nothing arrives while paused: the guest's readers of missing pages stay blocked, none read a wrong page
                assertThat(reader.get().readMismatches()).isZero();
                long t1 = System.nanoTime();
                out.resume(proxy.address());
                awaitState(out, MigrationState.POSTCOPY);
                long resumed = System.nanoTime();
                awaitState(in, MigrationState.POSTCOPY);
                System.out.printf("recovery (preempt %s" + (clientTls != null ? ", TLS" : "") + ") cycle %d: %d pages missing at the cut; paused after %.1f ms; "
                                + "resume to POSTCOPY (RESUME_ACK) %.1f ms; reads while paused %d%n", preempt, cycle, missing,
                        (paused - t0) / 1e6, (resumed - t1) / 1e6, reader.get().reads() - readsPaused);
            }
            assertThat(out.awaitCompletion(Duration.ofSeconds(60))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            // after resumes, the preempt channel's earlier pages were counted twice (remaining below zero at the end)
            assertThat(out.progress().remainingPages()).as("pages left by the source's count").isZero();
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
            assertThat(reader.get().readMismatches()).isZero();
            assertThat(l.migrations()).containsExactly(in);
        }
    }

    /**
     * A resume answered badly (here: a RECV_BITMAP of the wrong size from a peer that is not the destination) ends
     * that attempt with the codec's precise message and leaves the migration paused; a resume to the real
     * destination then goes on and every page arrives.
     */
    @org.junit.jupiter.api.Test
    void aMalformedAnswerToAResumeLeavesTheMigrationPaused() throws Exception {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 41);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults());
        try (Proxy proxy = new Proxy(l.port());
             java.nio.channels.ServerSocketChannel impostor = java.nio.channels.ServerSocketChannel.open()
                     .bind(new InetSocketAddress("127.0.0.1", 0))) {
            OutgoingMigration out = src.service.migrate(proxy.address(), OutgoingOptions.defaults().withBlocks("pc.ram")
                    .withMaxBandwidth(8L << 20));
            awaitState(out, MigrationState.POSTCOPY);
            Await.until("the incoming migration", Duration.ofSeconds(30), () -> !l.migrations().isEmpty());
            IncomingMigration in = l.migrations().get(0);
            awaitState(in, MigrationState.POSTCOPY);
            proxy.cut();
            awaitState(out, MigrationState.POSTCOPY_PAUSED);
            awaitState(in, MigrationState.POSTCOPY_PAUSED);
            // the impostor reads the resume's first bytes, then answers RECV_BITMAP for pc.ram with a 16-byte bitmap
            Thread answer = new Thread(() -> {
                try (SocketChannel c = impostor.accept()) {
                    ByteBuffer in1 = ByteBuffer.allocate(64);
                    c.read(in1);
                    byte[] name = "pc.ram".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
                    ByteBuffer rp = ByteBuffer.allocate(64);
                    rp.putShort((short) 5).putShort((short) (1 + name.length)).put((byte) name.length).put(name)
                            .putLong(16).putLong(0).putLong(0).putLong(0x0123456789ABCDEFL).flip();
                    while (rp.hasRemaining()) c.write(rp);
                    Thread.sleep(2000);
                } catch (IOException | InterruptedException ignored) {
                    // the source closed it
                }
            });
            answer.setDaemon(true);
            answer.start();
            out.resume((InetSocketAddress) impostor.getLocalAddress());
            Await.until("the source still paused after the refused resume", Duration.ofSeconds(20),
                    () -> out.reason().orElse("").contains("still paused"));
            assertThat(out.state()).isEqualTo(MigrationState.POSTCOPY_PAUSED);
            assertThat(out.reason()).hasValueSatisfying(r -> assertThat(r).contains("failed: return path: OUT_OF_BLOCK")
                    .contains("RECV_BITMAP size").endsWith("; still paused"));
            assertThat(out.failure()).isEmpty();
            out.resume(proxy.address());
            assertThat(out.awaitCompletion(Duration.ofSeconds(60))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        }
    }

    /**
     * A silent partition: the proxy drops every byte, both ways, without a reset or a FIN. Both sides find the
     * connection silent within silenceTimeoutMillis (1 s here; the source PINGs every third of it) and pause; once
     * the partition is lifted, a resume goes on and every page arrives.
     */
    @org.junit.jupiter.api.Test
    void aSilentPartitionIsDetectedWithinTheTimeoutAndRecovered() throws Exception {
        Endpoint s2 = new Endpoint(java.util.Map.of("silenceTimeoutMillis", 1000));
        Endpoint d2 = new Endpoint(java.util.Map.of("silenceTimeoutMillis", 1000));
        try {
            RamBlock ram = s2.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
            Workload.fill(ram, 37);
            IncomingListener l = d2.service.listen(null, IncomingOptions.defaults().withGuest(d2.readerGuest("pc.ram", reader,
                    WorkloadOptions.builder().threads(2).ratePerThread(500).checkReads(true).build())));
            try (Proxy proxy = new Proxy(l.port())) {
                OutgoingMigration out = s2.service.migrate(proxy.address(), OutgoingOptions.defaults().withBlocks("pc.ram")
                        .withMaxBandwidth(8L << 20));
                awaitState(out, MigrationState.POSTCOPY);
                Await.until("the incoming migration", Duration.ofSeconds(30), () -> !l.migrations().isEmpty());
                IncomingMigration in = l.migrations().get(0);
                awaitState(in, MigrationState.POSTCOPY);
                Thread.sleep(300);
                long t0 = System.nanoTime();
                proxy.frozen = true;
                awaitState(out, MigrationState.POSTCOPY_PAUSED);
                long srcMs = (System.nanoTime() - t0) / 1_000_000;
                awaitState(in, MigrationState.POSTCOPY_PAUSED);
                long dstMs = (System.nanoTime() - t0) / 1_000_000;
                System.out.printf("silent partition: source paused after %d ms, destination after %d ms (timeout 1000 ms)%n",
                        srcMs, dstMs);
                assertThat(out.reason()).hasValueSatisfying(r -> assertThat(r).contains("silenceTimeoutMillis"));
                assertThat(in.reason()).hasValueSatisfying(r -> assertThat(r).contains("silenceTimeoutMillis"));
                assertThat(dstMs).isLessThan(3000);
                assertThat(srcMs).isLessThan(3000);
                proxy.cut();         // the partition lifted: new connections pass
                out.resume(proxy.address());
                assertThat(out.awaitCompletion(Duration.ofSeconds(60))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
                assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
                assertThat(Endpoint.mismatchedPages(ram, d2.registry.byName("pc.ram"))).isZero();
                assertThat(reader.get().readMismatches()).isZero();
            }
        } finally {
            s2.close();
            d2.close();
        }
    }
}
