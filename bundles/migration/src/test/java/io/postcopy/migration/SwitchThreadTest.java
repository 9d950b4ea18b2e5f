package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.Command;
import io.postcopy.codec.SectionType;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.workload.Workload;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The destination's stream thread runs as an urgent thread during the switch, while no guest runs anywhere: a device
 * section's handler, called from the package, sees real time (tests run as root, so it is granted). Once RUN is read
 * and the PING after it answered, the thread is back at its own scheduling while it streams the remaining pages, so
 * background pages never run at real time. QEMU 10's last precopy pass after SWITCHOVER_START is part of the switch.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SwitchThreadTest {
    static final int SCHED_OTHER = 0, SCHED_FIFO = 1;
    /** Paces the source so that the postcopy phase lasts ~2 s: the thread is still there to be looked at. */
    static final long RATE = 32L << 20;

    @Test
    void theStreamThreadIsUrgentDuringTheSwitchOnlyAndStreamsAtItsOwnPriorityAfter() throws Exception {
        AtomicReference<int[]> inPackage = new AtomicReference<>();
        AtomicReference<String> streamTask = new AtomicReference<>();
        AtomicReference<int[]> afterSwitch = new AtomicReference<>();
        try (Endpoint src = new Endpoint(Map.of()); Endpoint dst = new Endpoint(Map.of())) {
            RamBlock ram = src.registry.create("pc.ram", 64L << 20, RamBlock.Backing.ANONYMOUS);
            Workload.fill(ram, 9);
            src.service.addDeviceStateHandler(new Handler(null, null));
            dst.service.addDeviceStateHandler(new Handler(inPackage, streamTask));
            IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener.port()),
                    OutgoingOptions.defaults().withMode(MigrationMode.POSTCOPY).withMaxBandwidth(RATE));
            // after RUN: the stream thread has answered the PING and streams pages; it must have left real time
            IncomingMigration in = Await.until("the accepted migration", Duration.ofSeconds(10),
                    () -> listener.migrations().isEmpty() ? null : listener.migrations().get(0), java.util.Objects::nonNull);
            Await.until("postcopy streaming on the destination", Duration.ofSeconds(20),
                    () -> in.state() == MigrationState.POSTCOPY && in.progress().postcopyPageBytes() > (1 << 20)
                            || in.state().isFinal());
            assertThat(in.state()).as("the destination still streams (the source is paced at %d MiB/s)", RATE >> 20)
                    .isEqualTo(MigrationState.POSTCOPY);
            afterSwitch.set(Endpoint.policyAndNice(Path.of(streamTask.get())));
            assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        }
        assertThat(inPackage.get()).as("the device section was loaded").isNotNull();
        assertThat(inPackage.get()[0]).as("the stream thread's policy in the package (1 = SCHED_FIFO)").isEqualTo(SCHED_FIFO);
        assertThat(afterSwitch.get()).as("the stream thread after the switch (%s)", streamTask.get()).isNotNull();
        assertThat(afterSwitch.get()[0]).as("its policy after the switch (0 = SCHED_OTHER)").isEqualTo(SCHED_OTHER);
        assertThat(afterSwitch.get()[1]).as("its nice value after the switch (no guest faults: its normal weight)").isZero();
    }

    /**
     * QEMU 10 sends SWITCHOVER_START before its last precopy pass too (a precopy-only end): its guest is paused from
     * there to the end of the stream, so the stream thread stays urgent while it reads that pass (a page must not end
     * the switch before RUN), and returns to its own scheduling before it resumes the guest at the end, so that the
     * guest's resume, which may start threads, never runs at real time.
     */
    @Test
    void qemu10sLastPrecopyPassIsPartOfTheSwitchAndTheGuestResumesAtNormalPriority() throws Exception {
        AtomicReference<int[]> atResume = new AtomicReference<>();
        AtomicReference<String> resumeTask = new AtomicReference<>();
        GuestControl guest = GuestControl.of(() -> { }, () -> {
            Path self = Endpoint.thisThreadTask();
            resumeTask.set(self.toString());
            atResume.set(Endpoint.policyAndNice(self));
        });
        try (Endpoint dst = new Endpoint(Map.of())) {
            IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().withGuest(guest));
            java.util.Set<String> before = streamThreads();
            try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
                PostcopyPreemptChannelTest.write(main, PostcopyPreemptChannelTest.setupAndPrecopy(5, 7));
                PostcopyPreemptChannelTest.write(main, PostcopyPreemptChannelTest.encode(e -> {
                    e.writeCommand(new Command.SwitchoverStart());
                    e.writeSectionPart(SectionType.PART, 2);
                    e.writePage(PostcopyPreemptChannelTest.RAM, 5 * 4096L, PostcopyPreemptChannelTest.page(5), 0);
                    e.writeEos().writeFooter(2);
                }));
                IncomingMigration in = Await.until("the accepted migration", Duration.ofSeconds(10),
                        () -> listener.migrations().isEmpty() ? null : listener.migrations().get(0), java.util.Objects::nonNull);
                Await.until("page 5 of the last pass read", Duration.ofSeconds(10),
                        () -> in.progress().pages() >= PostcopyPreemptChannelTest.PAGES - 1 || in.state().isFinal());
                java.util.Set<String> mine = streamThreads();
                mine.removeAll(before);
                assertThat(mine).as("the new migration's stream thread").hasSize(1);
                String task = mine.iterator().next();
                assertThat(in.state().isFinal()).as("the migration ended early: %s", in.failure()).isFalse();
                assertThat(Endpoint.policyAndNice(Path.of(task))[0])
                        .as("the stream thread %s after SWITCHOVER_START and a page (1 = SCHED_FIFO)", task).isEqualTo(SCHED_FIFO);
                PostcopyPreemptChannelTest.write(main, PostcopyPreemptChannelTest.encode(e -> {
                    e.writeSectionPart(SectionType.PART, 2);
                    e.writePage(PostcopyPreemptChannelTest.RAM, 7 * 4096L, PostcopyPreemptChannelTest.page(7), 0);
                    e.writeEos().writeFooter(2);
                }));
                PostcopyPreemptChannelTest.write(main, PostcopyPreemptChannelTest.end());
                assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
                assertThat(resumeTask.get()).as("the guest resumed on the stream thread").isEqualTo(task);
            }
        }
        assertThat(atResume.get()[0]).as("the stream thread's policy in the guest's resume (0 = SCHED_OTHER)").isEqualTo(SCHED_OTHER);
        assertThat(atResume.get()[1]).as("its nice value in the guest's resume").isZero();
    }

    /** This JVM's destination stream threads (a listener's routing thread, renamed for its migration), as /proc task paths. */
    static java.util.Set<String> streamThreads() throws IOException {
        java.util.Set<String> found = new java.util.HashSet<>();
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                try {
                    // comm holds 15 characters: "postcopy-in-" and the start of the migration id
                    if (Files.readString(t.resolve("comm")).strip().startsWith("postcopy-in-")) {
                        found.add(t.toRealPath().toString());
                    }
                } catch (IOException gone) {
                    // the thread ended meanwhile
                }
            }
        }
        return found;
    }

    /** One small section; on the destination it notes the calling thread's scheduling and its /proc task path. */
    record Handler(AtomicReference<int[]> seen, AtomicReference<String> task) implements DeviceStateHandler {
        @Override
        public String idstr() {
            return "test/switch";
        }

        @Override
        public void save(OutputStream out) throws IOException {
            out.write(new byte[] {1, 2, 3, 4});
        }

        @Override
        public void load(InputStream in, int versionId) throws IOException {
            in.readAllBytes();
            Path self = Endpoint.thisThreadTask();
            task.set(self.toString());
            seen.set(Endpoint.policyAndNice(self));
        }
    }
}
