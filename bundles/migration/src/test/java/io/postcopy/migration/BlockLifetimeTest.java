package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.codec.Command;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockInUseException;
import io.postcopy.testkit.Await;
import io.postcopy.workload.PageDigest;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A block is never unmapped while anything touches it: removing a block that a migration uses is refused, naming
 * the migration; a forced removal cancels the migration, waits until its threads have let go, then unmaps. And a
 * destination that fails after RUN never lets its guest read a page that did not arrive.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class BlockLifetimeTest {
    static final long SIZE = 64L << 20;
    final Endpoint src = new Endpoint(), dst = new Endpoint();
    final AtomicReference<Workload> reader = new AtomicReference<>();

    @AfterEach
    void close() {
        src.close();
        dst.close();
    }

    /** The destination's guest: checking readers started at RUN, asked to pause before its reads can wake. */
    GuestControl destinationGuest(String block) {
        return dst.readerGuest(block, reader, WorkloadOptions.builder().threads(2).checkReads(true).build());
    }

    /** A pure postcopy migration at 16 MiB/s with the preempt channel, its destination guest reading. */
    OutgoingMigration startPostcopy(RamBlock ram, IncomingListener[] listener) throws Exception {
        listener[0] = dst.service.listen(null, IncomingOptions.defaults().withGuest(destinationGuest("pc.ram")));
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener[0].port()),
                OutgoingOptions.defaults().withBlocks("pc.ram").withPostcopyPreempt(true).withMaxBandwidth(16L << 20));
        // busy on every path: bulk pages on the main stream, requested pages written by the return-path reader
        Await.until("20 requested pages", Duration.ofSeconds(20), () -> out.progress().requestedPages() >= 20);
        assertThat(out.state()).isEqualTo(MigrationState.POSTCOPY);
        return out;
    }

    static Set<String> threadNames() {
        Set<String> names = new java.util.HashSet<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) names.add(t.getName());
        return names;
    }

    static void awaitGone(String thread) throws InterruptedException {
        Await.until("thread " + thread + " gone", Duration.ofSeconds(5), () -> !threadNames().contains(thread));
    }

    @Test
    void aSourceBlockInUseIsRefusedAndAForcedRemovalCancelsTheMigrationFirst() throws Exception {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 3);
        IncomingListener[] l = new IncomingListener[1];
        OutgoingMigration out = startPostcopy(ram, l);

        assertThatThrownBy(() -> src.registry.remove("pc.ram")).isInstanceOf(RamBlockInUseException.class)
                .hasMessage("RAM block \"pc.ram\" is in use by migration " + out.id());
        assertThat(out.state()).isEqualTo(MigrationState.POSTCOPY);

        assertThat(src.registry.remove("pc.ram", Duration.ofSeconds(20))).isSameAs(ram);
        // the removal waited for the migration to let go: its threads have ended, its final state follows
        assertThat(out.awaitCompletion(Duration.ofSeconds(5))).isEqualTo(MigrationState.CANCELLED);
        assertThat(out.failure()).hasValue("cancelled on the source");
        // the return-path reader was joined before the leases went; the sender reports the final state as its last
        // act, so it may still be returning from run() for a moment
        assertThat(threadNames()).doesNotContain("postcopy-rp-" + out.id());
        awaitGone("postcopy-out-" + out.id());
        assertThat(src.registry.blocks()).isEmpty();

        // the destination sees a lost connection: it pauses (its guest's missing pages exist only on the source)
        IncomingMigration in = l[0].migrations().get(0);
        RecoveryTest.awaitState(in, MigrationState.POSTCOPY_PAUSED);
        in.cancel();
        assertThat(in.awaitCompletion(Duration.ofSeconds(20))).isEqualTo(MigrationState.CANCELLED);
        Workload w = reader.get();
        assertThat(w.readMismatches()).isZero();
        assertThat(dst.registry.byName("pc.ram")).as("the failed destination removed its block, its guest first").isNull();
        assertThat(w.isRunning()).isFalse();
    }

    @Test
    void aDestinationBlockInUseIsRefusedAndAForcedRemovalEndsTheMigrationAndItsReaders() throws Exception {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 4);
        IncomingListener[] l = new IncomingListener[1];
        OutgoingMigration out = startPostcopy(ram, l);
        IncomingMigration in = l[0].migrations().get(0);
        RamBlock dstRam = dst.registry.byName("pc.ram");
        // a digest of the destination block waits in native code for pages that come at 16 MiB/s
        AtomicReference<Object> digest = new AtomicReference<>();
        Thread digester = new Thread(() -> {
            try {
                digest.set(PageDigest.of(dstRam));
            } catch (RuntimeException e) {
                digest.set(e);
            }
        });
        digester.start();
        Await.until("the digest holding pc.ram", Duration.ofSeconds(30), () -> dstRam.holders().contains("digest of pc.ram"));

        assertThatThrownBy(() -> dst.registry.remove("pc.ram")).isInstanceOf(RamBlockInUseException.class)
                .hasMessageStartingWith("RAM block \"pc.ram\" is in use by migration " + in.id() + ", workload on pc.ram");
        assertThat(in.state()).isEqualTo(MigrationState.POSTCOPY);

        assertThat(dst.registry.remove("pc.ram", Duration.ofSeconds(20))).isSameAs(dstRam);
        assertThat(in.awaitCompletion(Duration.ofSeconds(5))).isEqualTo(MigrationState.FAILED);
        assertThat(in.failure()).hasValueSatisfying(f -> assertThat(f).startsWith("RAM block pc.ram is being removed by force"));
        digester.join(10_000);
        assertThat(digest.get()).isInstanceOfSatisfying(IllegalStateException.class,
                e -> assertThat(e).hasMessage("digest of pc.ram stopped: the block is being removed"));
        Workload w = reader.get();
        assertThat(w.isRunning()).isFalse();
        assertThat(w.readMismatches()).isZero();
        assertThat(threadNames()).noneMatch(n -> n.startsWith("workload-pc.ram") || n.equals("postcopy-fault-" + in.id()));
        // the source pauses, keeping its guest paused and its RAM: postcopy cannot roll back
        RecoveryTest.awaitState(out, MigrationState.POSTCOPY_PAUSED);
        assertThat(src.registry.byName("pc.ram")).isSameAs(ram);
        assertThat(ram.holders()).containsExactly("migration " + out.id());
        assertThat(Workload.verify(ram, 4).filledPages()).isEqualTo(SIZE / 4096);
        out.cancel();
        assertThat(out.awaitCompletion(Duration.ofSeconds(20))).isEqualTo(MigrationState.CANCELLED);
    }

    /**
     * The guest's readers are blocked on pages that never come when the connection fails: the destination asks
     * the guest to pause before cleanup wakes them (into zero pages), so no read of such a page is returned.
     */
    @Test
    void readersBlockedOnMissingPagesWhenTheConnectionFailsNeverReturnAPageThatDidNotArrive() throws Exception {
        RamBlockInfo info = new RamBlockInfo(0, "pc.ram", 16L << 20, 4096);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withGuest(destinationGuest("pc.ram")));
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", l.port()))) {
            // setup, LISTEN and RUN, then no page at all
            byte[] setup = LimitsTest.setup(info);
            byte[] run = StreamEncoder.encode(e -> {
                e.writeCommand(new Command.PostcopyListen());
                e.writeCommand(new Command.PostcopyRun());
            });
            byte[] start = java.util.Arrays.copyOf(setup, setup.length + run.length);
            System.arraycopy(run, 0, start, setup.length, run.length);
            ByteBuffer b = ByteBuffer.wrap(start);
            while (b.hasRemaining()) c.write(b);
            Await.until("the incoming migration", Duration.ofSeconds(30), () -> !l.migrations().isEmpty());
            IncomingMigration in = l.migrations().get(0);
            // both reader threads are blocked on a fault, and the fault thread has asked for their pages
            Await.until("2 page requests", Duration.ofSeconds(10),
                    () -> in.statistics().isPresent() && in.statistics().get().requests() >= 2);
            Thread.sleep(50);
            Workload w = reader.get();
            assertThat(w.reads()).isZero();
            assertThat(in.peerId()).as("a QEMU-like source sends no PEER_ID, so it gets none").isEmpty();
            c.close();      // the source (QEMU-like: no token) is gone

            // it may come back (QEMU's migrate-recover): paused, the readers still blocked
            RecoveryTest.awaitState(in, MigrationState.POSTCOPY_PAUSED);
            assertThat(in.reason()).hasValueSatisfying(r -> assertThat(r).contains("QEMU: recover here"));
            Thread.sleep(50);
            assertThat(w.reads()).isZero();
            in.cancel();
            assertThat(in.awaitCompletion(Duration.ofSeconds(20))).isEqualTo(MigrationState.CANCELLED);
            assertThat(in.failure()).hasValueSatisfying(f -> assertThat(f).contains("16777216 bytes in 1 range never received"));
            // woken, not returned: not one read, though memory is unregistered and reads would now succeed
            assertThat(w.reads()).isZero();
            assertThat(w.pagesTouched()).isZero();
            assertThat(w.isPaused() || !w.isRunning()).isTrue();
        }
    }
}
