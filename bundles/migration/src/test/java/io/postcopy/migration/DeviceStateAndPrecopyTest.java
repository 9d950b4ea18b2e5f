package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DeviceStateAndPrecopyTest {
    final Endpoint src = new Endpoint(), dst = new Endpoint();

    @AfterEach
    void close() {
        src.close();
        dst.close();
    }

    /** Saves fixed bytes on the source; on the destination records what it loaded. */
    static final class Device implements DeviceStateHandler {
        final String idstr;
        final int instance, version;
        final byte[] state;
        volatile byte[] loaded;
        volatile int loadedVersion = -1;

        Device(String idstr, int instance, int version, byte[] state) {
            this.idstr = idstr;
            this.instance = instance;
            this.version = version;
            this.state = state;
        }

        @Override public String idstr() { return idstr; }
        @Override public int instanceId() { return instance; }
        @Override public int versionId() { return version; }

        @Override
        public void save(OutputStream out) throws IOException {
            out.write(state);
        }

        @Override
        public void load(InputStream in, int versionId) throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            in.transferTo(b);
            loaded = b.toByteArray();
            loadedVersion = versionId;
        }
    }

    static byte[] bytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        // footer-like bytes inside the body: 0x7e + this section's id (3) + a FULL header
        if (n > 16) System.arraycopy(new byte[] {0x7e, 0, 0, 0, 3, 0x04, 0, 0, 0, 4}, 0, b, 8, 10);
        return b;
    }

    @Test
    void deviceStateTravelsInThePackage() throws Exception {
        RamBlock ram = src.registry.create("pc.ram", 16 << 20, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 3);
        byte[] config = bytes(100_000, 1), small = bytes(3, 2);
        src.service.addDeviceStateHandler(new Device("mgmt/vm-config", 0, 7, config));
        src.service.addDeviceStateHandler(new Device("mgmt/nic", 1, 2, small));
        src.service.addDeviceStateHandler(new Device("qemu/timer", 0, 2, bytes(40, 3)));    // nobody here takes it
        Device cfgIn = new Device("mgmt/vm-config", 0, 1, null), nicIn = new Device("mgmt/nic", 1, 1, null);
        dst.service.addDeviceStateHandler(cfgIn);
        dst.service.addDeviceStateHandler(nicIn);
        AtomicInteger loadedAtRun = new AtomicInteger(-1);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().onRun(
                () -> loadedAtRun.set(cfgIn.loaded == null ? 0 : cfgIn.loaded.length)));

        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()), OutgoingOptions.defaults());
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = l.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
        assertThat(cfgIn.loaded).isEqualTo(config);
        assertThat(cfgIn.loadedVersion).isEqualTo(7);
        assertThat(nicIn.loaded).isEqualTo(small);
        assertThat(nicIn.loadedVersion).isEqualTo(2);
        assertThat(loadedAtRun.get()).as("device state loaded before the guest resumes").isEqualTo(config.length);
        assertThat(out.progress().deviceSections()).isEqualTo(3);
        assertThat(in.progress().deviceSections()).isEqualTo(2);
        assertThat(in.opaqueSections()).singleElement().satisfies(s -> {
            assertThat(s.idstr()).isEqualTo("qemu/timer");
            assertThat(s.bytes()[0]).isEqualTo((byte) 0x04);             // FULL header through footer
            assertThat(s.bytes()[s.bytes().length - 5]).isEqualTo((byte) 0x7e);
        });
        assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
    }

    @Test
    void precopyOnlyWithAWritingGuest() throws Exception {
        RamBlock ram = src.registry.create("pc.ram", 64 << 20, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 5);
        Workload w = Workloads.start(ram, WorkloadOptions.builder().writeFraction(1.0).contentSeed(5).ratePerThread(20_000).build());
        Device dev = new Device("mgmt/vm-config", 0, 1, bytes(500, 4)), devIn = new Device("mgmt/vm-config", 0, 1, null);
        src.service.addDeviceStateHandler(dev);
        dst.service.addDeviceStateHandler(devIn);
        AtomicInteger resumed = new AtomicInteger();
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().onRun(resumed::incrementAndGet));
        try {
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()),
                    OutgoingOptions.defaults().withMode(MigrationMode.PRECOPY_ONLY).withMaxIterations(5)
                            .withGuest(GuestControl.of(w::pause, w::resume)));
            assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            IncomingMigration in = l.migrations().get(0);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(w.isPaused()).isTrue();
            assertThat(w.writes()).isGreaterThan(0);
            assertThat(resumed.get()).isEqualTo(1);
            assertThat(devIn.loaded).isEqualTo(dev.state);
            MigrationProgress p = out.progress();
            assertThat(p.iterations()).isGreaterThanOrEqualTo(2);
            assertThat(p.postcopyNanos()).isZero();
            assertThat(p.discardRanges()).isZero();
            assertThat(p.pages() + p.zeroPages()).as("dirty pages sent again").isGreaterThan(ram.usedLength() / 4096);
            assertThat(in.statistics().orElseThrow().requests()).isZero();
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        } finally {
            w.stop();
        }
    }
}
