package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Migrations that end early in postcopy. A lost connection (a cut, or the other side's cancel, which looks the same
 * from here) pauses a side (QEMU's postcopy-paused: the guest's pages exist nowhere else); an explicit cancel then
 * ends it, the destination listing what never arrived.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CancelAndCutTest {
    static final long SIZE = 128L << 20;
    final Endpoint src = new Endpoint(), dst = new Endpoint();
    final AtomicReference<Workload> reader = new AtomicReference<>();

    @AfterEach
    void close() {
        // the migrations first: a paused destination keeps its guest's readers blocked until it ends
        src.close();
        dst.close();
        Workload w = reader.get();
        if (w != null) w.stop();
    }

    RamBlock sourceBlock() {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 9);
        return ram;
    }

    /** A destination guest: a reader started at RUN, stopped (not just paused) if the migration fails. */
    GuestControl destinationGuest() {
        return GuestControl.of(() -> {
            Workload w = reader.get();
            if (w != null) w.stop();
        }, () -> reader.set(Workloads.start(dst.registry.byName("pc.ram"),
                WorkloadOptions.builder().checkReads(true).build())));
    }

    static void assertMissing(IncomingMigration in) {
        assertThat(in.missing()).hasValueSatisfying(m -> assertThat(m.totalBytes()).isPositive());
        assertThat(in.failure()).hasValueSatisfying(f -> assertThat(f).contains("never received"));
        assertThat(in.statistics().orElseThrow().pagesPlaced()).isLessThan(SIZE / 4096);
    }

    @Test
    void cancelOnTheSource() throws Exception {
        sourceBlock();
        AtomicReference<OutgoingMigration> out = new AtomicReference<>();
        GuestControl guest = destinationGuest();
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withGuest(GuestControl.of(guest::pause, () -> {
            guest.resume();
            out.get().cancel();             // the guest runs here, most pages are still on the source
        })));
        out.set(src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()), OutgoingOptions.defaults()));
        assertThat(out.get().awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.CANCELLED);
        assertThat(out.get().failure()).hasValue("cancelled on the source");
        IncomingMigration in = waitFor(l);
        // the destination cannot tell a cancel from a cut: it pauses, its guest waiting, until cancelled too
        RecoveryTest.awaitState(in, MigrationState.POSTCOPY_PAUSED);
        in.cancel();
        assertThat(in.awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.CANCELLED);
        assertThat(in.failure()).hasValueSatisfying(f -> assertThat(f).startsWith("cancelled on the destination"));
        assertMissing(in);
        assertThat(dst.registry.byName("pc.ram")).isNull();
        assertThat(reader.get().isRunning()).isFalse();
    }

    @Test
    void cancelOnTheDestination() throws Exception {
        sourceBlock();
        AtomicReference<IncomingListener> listener = new AtomicReference<>();
        GuestControl guest = destinationGuest();
        listener.set(dst.service.listen(null, IncomingOptions.defaults().withGuest(GuestControl.of(guest::pause, () -> {
            guest.resume();
            listener.get().migrations().get(0).cancel();
        }))));
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener.get().port()), OutgoingOptions.defaults());
        IncomingMigration in = waitFor(listener.get());
        assertThat(in.awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.CANCELLED);
        assertThat(in.failure()).hasValueSatisfying(f -> assertThat(f).startsWith("cancelled on the destination"));
        assertMissing(in);
        // the source keeps its guest paused and its RAM until it is cancelled too
        RecoveryTest.awaitState(out, MigrationState.POSTCOPY_PAUSED);
        out.cancel();
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.CANCELLED);
    }

    @Test
    void connectionCutDuringPostcopy() throws Exception {
        RamBlock ram = sourceBlock();
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withGuest(destinationGuest()));
        try (CuttingProxy proxy = new CuttingProxy(l.port(), SIZE / 4)) {
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", proxy.port()), OutgoingOptions.defaults());
            IncomingMigration in = waitFor(l);
            RecoveryTest.awaitState(in, MigrationState.POSTCOPY_PAUSED);
            RecoveryTest.awaitState(out, MigrationState.POSTCOPY_PAUSED);
            assertThat(ram.holders()).as("the paused source keeps its RAM").containsExactly("migration " + out.id());
            in.cancel();
            out.cancel();
            assertThat(in.awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.CANCELLED);
            assertMissing(in);
            assertThat(out.awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.CANCELLED);
            assertThat(ram.usedLength()).isEqualTo(SIZE);
        }
    }

    static IncomingMigration waitFor(IncomingListener l) throws InterruptedException {
        Await.until("the incoming migration", Duration.ofSeconds(10), () -> !l.migrations().isEmpty());
        return l.migrations().get(0);
    }

    /** Forwards one connection both ways and cuts it after {@code limit} bytes from the source. */
    static final class CuttingProxy implements AutoCloseable {
        final ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
        final AtomicLong forwarded = new AtomicLong();
        volatile SocketChannel a, b;

        CuttingProxy(int targetPort, long limit) throws IOException {
            Thread t = new Thread(() -> {
                try {
                    a = server.accept();
                    b = SocketChannel.open(new InetSocketAddress("127.0.0.1", targetPort));
                    Thread back = new Thread(() -> pump(b, a, Long.MAX_VALUE));
                    back.setDaemon(true);
                    back.start();
                    pump(a, b, limit);
                } catch (IOException ignored) {
                    // cut
                } finally {
                    close();
                }
            });
            t.setDaemon(true);
            t.start();
        }

        void pump(SocketChannel from, SocketChannel to, long limit) {
            ByteBuffer buf = ByteBuffer.allocateDirect(64 * 1024);
            try {
                while (forwarded.get() < limit && from.read(buf) >= 0) {
                    buf.flip();
                    forwarded.addAndGet(buf.remaining());
                    while (buf.hasRemaining()) to.write(buf);
                    buf.clear();
                }
            } catch (IOException ignored) {
                // cut
            }
            close();
        }

        int port() throws IOException {
            return ((InetSocketAddress) server.getLocalAddress()).getPort();
        }

        @Override
        public void close() {
            for (java.io.Closeable c : new java.io.Closeable[] {server, a, b}) {
                try {
                    if (c != null) c.close();
                } catch (IOException ignored) {
                    // closing
                }
            }
        }
    }
}
