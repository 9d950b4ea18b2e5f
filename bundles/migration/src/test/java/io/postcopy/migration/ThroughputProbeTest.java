package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.workload.Workload;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/** Manual probe ({@code -Dprobe=true}): encoder speed alone, then per-page vs staged placement without workloads. */
@EnabledIfSystemProperty(named = "probe", matches = "true",
        disabledReason = "manual throughput probe, not a test of a feature: run with -Dprobe=true")
class ThroughputProbeTest {
    @Test
    void probe() throws Exception {
        long size = 256L << 20;
        for (int staging : new int[] {4096, 65536}) {
            try (Endpoint src = new Endpoint(); Endpoint dst = new Endpoint(0, 0, staging)) {
                RamBlock ram = src.registry.create("pc.ram", size, RamBlock.Backing.ANONYMOUS);
                Workload.fill(ram, 1);
                // encode only
                RamBlockInfo info = new RamBlockInfo(0, "pc.ram", size, 4096);
                WritableByteChannel nul = new WritableByteChannel() {
                    public int write(ByteBuffer b) { int n = b.remaining(); b.position(b.limit()); return n; }
                    public boolean isOpen() { return true; }
                    public void close() { }
                };
                for (int rep = 0; rep < 3; rep++) {
                    StreamEncoder e = new StreamEncoder(nul);
                    long t0 = System.nanoTime();
                    for (long o = 0; o < size; o += 4096) {
                        if (NativeMemory.isZero(ram.hostAddress() + o, 4096)) e.writeZero(info, o, 0);
                        else e.writePage(info, o, ram.hostAddress() + o);
                    }
                    e.flush();
                    System.out.printf("encode only: %.2f GB/s%n", size / (double) (System.nanoTime() - t0));
                }
                IncomingListener l = dst.service.listen(null, IncomingOptions.defaults());
                OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()), OutgoingOptions.defaults());
                assertThat(out.awaitCompletion(Duration.ofSeconds(60))).isEqualTo(MigrationState.COMPLETED);
                System.out.printf("staging %d: postcopy %.1f ms, %.2f GB/s%n", staging, out.progress().postcopyNanos() / 1e6,
                        out.progress().throughputGBps());
            }
        }
    }
}
