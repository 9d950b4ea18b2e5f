package io.postcopy.benchmarks.e2e;

import io.postcopy.backend.anon.standalone.AnonBackends;
import io.postcopy.backend.hugepage.standalone.HugePageBackends;
import io.postcopy.fault.standalone.FaultHandlers;
import io.postcopy.fault.FaultService;
import io.postcopy.migration.MigrationService;
import io.postcopy.migration.standalone.Migrations;
import io.postcopy.policy.Policies;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.workload.PageDigest;
import io.postcopy.workload.Workload;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/** What both ends of the end-to-end benchmark share: the endpoint wiring, arguments, a streaming digest, JSON. */
final class E2eCommon {
    static final String BLOCK = "pc.ram";
    static final long CONTENT_SEED = 7;

    private E2eCommon() {}

    /** One side: its own registry, fault service (with the anon and, if asked, the hugepage backend) and service. */
    static final class Side implements AutoCloseable {
        final RamBlockRegistry registry = RamBlocks.newRegistry();
        /** -De2e.fifo=N (set by --realtime N): the threads on a request's way run SCHED_FIFO N within the
         *  real-time budget (-De2e.rtpercent, --realtime-percent; the service defaults 1 and 50); 0 = nice -5. */
        final int fifo = Integer.getInteger("e2e.fifo", 1);
        /** -De2e.faultfifo=N (--fault-realtime N): the fault thread's apart; by default as the others'. */
        final int faultFifo = Integer.getInteger("e2e.faultfifo", fifo);
        final io.postcopy.fault.standalone.StandaloneFaultService faults = FaultHandlers.newService(registry, Policies.newBalloonInhibitor(),
                Policies.newMemoryLockPolicy(false), Policies.newHugePagePolicy(true), -5, faultFifo);
        final io.postcopy.migration.standalone.StandaloneMigrationService service;

        Side(boolean hugepage) {
            faults.addBackend(AnonBackends.newBackend(), 0);
            if (hugepage) faults.addBackend(HugePageBackends.newBackend(), 10);
            // the service's configuration as an administrator sets it (PID io.postcopy.migration)
            java.util.Map<String, Object> config = new HashMap<>(java.util.Map.of(
                    "sendBufferSize", Integer.getInteger("e2e.sndbuf", 128 * 1024),
                    "receiveBufferSize", Integer.getInteger("e2e.rcvbuf", 128 * 1024),
                    "urgentThreadNice", -5,
                    "urgentThreadFifoPriority", fifo,
                    "realtimeCpuPercent", Integer.getInteger("e2e.rtpercent", 50)));
            // absent: the service's default
            if (Integer.getInteger("e2e.staging") != null) config.put("stagingBatchSize", Integer.getInteger("e2e.staging"));
            // absent: the service's default (yield while the guest faults)
            if (Integer.getInteger("e2e.bulknice") != null) config.put("bulkThreadNice", Integer.getInteger("e2e.bulknice"));
            if (Integer.getInteger("e2e.bulkyield") != null) config.put("bulkThreadYieldNice", Integer.getInteger("e2e.bulkyield"));
            service = Migrations.newService(registry, faults, config);
        }

        @Override
        public void close() {
            service.close();
            registry.removeAll();
        }
    }

    /**
     * Runs a small migration inside this JVM (two endpoints over 127.0.0.1, a reading workload on the receiving
     * side) so that class loading from the jar, the JNR bindings' stub generation and the first JIT compilations
     * of the encode/decode/placement paths happen before the measured migration, as in a long-running
     * destination (a Karaf with the bundles active). Without it the destination's receive thread spends its
     * first seconds loading classes while the source waits on TCP. {@code bytes} 0 skips it.
     *
     * <p>{@code rounds} migrations, alternately with and without a reading guest: C2 compiles the hot loops from
     * the profile of the first migration, in which the branches a migration takes once (its start and end, a
     * guest or none) were not seen yet, so the second migration deoptimizes and recompiles them while it runs
     * (-XX:+LogCompilation: unstable_if traps in StreamDecoder, BulkThread, PageBitmap, netty's engine). From the
     * third on they are stable, as in a long-running destination (docs/performance.md, "Warm-up").
     */
    static void warmUp(long bytes, int rounds) throws Exception {
        for (int i = 0; i < rounds; i++) warmUpOnce(bytes, i % 2 == 0);
    }

    private static void warmUpOnce(long bytes, boolean guest) throws Exception {
        if (bytes <= 0) return;
        long t0 = System.nanoTime();
        try (Side src = new Side(false); Side dst = new Side(false)) {
            RamBlock b = src.registry.create("warmup", bytes, RamBlock.Backing.ANONYMOUS);
            Workload.fill(b, 1);
            java.util.concurrent.atomic.AtomicReference<Workload> reader = new java.util.concurrent.atomic.AtomicReference<>();
            // over TLS when the run is (e2e.tls): its code paths are then compiled before the measured run, as plain ones are
            io.postcopy.migration.TlsOptions tls = System.getProperty("e2e.tls") == null ? null
                    : io.postcopy.migration.TlsOptions.of(java.nio.file.Path.of(System.getProperty("e2e.tls")));
            io.postcopy.migration.IncomingListener l = dst.service.listen(null, io.postcopy.migration.IncomingOptions
                    .defaults().withBlockPrefix("in-").withTls(tls).onRun(() -> {
                        if (guest) reader.set(io.postcopy.workload.Workloads.start(dst.registry.byName("in-warmup"),
                                io.postcopy.workload.WorkloadOptions.builder().threads(1).checkReads(true).build()));
                    }));
            // a writing guest on the source until the switch, as in the measured run (its code is compiled here too)
            Workload writer = io.postcopy.workload.Workloads.start(b, io.postcopy.workload.WorkloadOptions.builder()
                    .threads(1).writeFraction(1.0).contentSeed(1).randomSeed(3).build());
            io.postcopy.migration.OutgoingMigration out = src.service.migrate(
                    new java.net.InetSocketAddress("127.0.0.1", l.port()), io.postcopy.migration.OutgoingOptions.defaults()
                            .withTls(tls).withGuest(io.postcopy.migration.GuestControl.of(writer::pause, () -> { }))
                            // with a guest, paced to last ~3 s: the guest then faults ~10,000 times, so that the
                            // request path reaches C2 too (unpaced, a small block is there before it faults much)
                            .withMaxBandwidth(guest ? bytes / 3 : 0));
            io.postcopy.migration.MigrationState st = out.awaitCompletion(java.time.Duration.ofMinutes(2));
            if (!l.migrations().isEmpty()) l.migrations().get(0).awaitCompletion(java.time.Duration.ofSeconds(30));
            Workload w = reader.get();
            if (w != null) w.stop();
            writer.stop();
            l.close();
            System.err.printf(Locale.ROOT, "e2e: warm-up migration of %d MiB in this JVM (%s guest): %s in %.0f ms, %d requests%n",
                    bytes >> 20, guest ? "a reading" : "no", st, (System.nanoTime() - t0) / 1e6, out.progress().requests());
        }
    }

    /** --key value pairs (and bare --flags as "true"). */
    static Map<String, String> args(String[] a) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < a.length; i++) {
            if (!a[i].startsWith("--")) throw new IllegalArgumentException("unexpected argument " + a[i]);
            String k = a[i].substring(2);
            int eq = k.indexOf('=');
            if (eq >= 0) m.put(k.substring(0, eq), k.substring(eq + 1));
            else if (i + 1 < a.length && !a[i + 1].startsWith("--")) m.put(k, a[++i]);
            else m.put(k, "true");
        }
        return m;
    }

    static long parseSize(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        long mul = 1;
        if (t.endsWith("IB")) t = t.substring(0, t.length() - 2);
        else if (t.endsWith("B")) t = t.substring(0, t.length() - 1);
        switch (t.charAt(t.length() - 1)) {
            case 'K' -> mul = 1L << 10;
            case 'M' -> mul = 1L << 20;
            case 'G' -> mul = 1L << 30;
            case 'T' -> mul = 1L << 40;
            default -> mul = 0;
        }
        return mul == 0 ? Long.parseLong(t) : Long.parseLong(t.substring(0, t.length() - 1)) * mul;
    }

    /**
     * Per-page SHA-256 of the block, written straight to {@code file} in {@link PageDigest}'s format, with no
     * block-sized array (the destination runs in a 64 MiB heap). Pages are copied out with native memcpy.
     */
    static void writeDigest(RamBlock block, Path file) throws IOException {
        final int page = Workload.PAGE_SIZE, chunk = 64;
        long pages = block.usedLength() / page;
        long buf = NativeMemory.allocate((long) chunk * page);
        byte[] p = new byte[page], d = new byte[PageDigest.DIGEST_BYTES];
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 16)) {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (long i = 0; i < pages; i += chunk) {
                int n = (int) Math.min(chunk, pages - i);
                NativeMemory.nativeCopy(block.hostAddress() + i * page, buf, (long) n * page);
                for (int j = 0; j < n; j++) {
                    NativeMemory.get(buf + (long) j * page, p, 0, page);
                    sha.update(p);
                    sha.digest(d, 0, d.length);
                    out.write(d);
                }
            }
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException(e);
        } finally {
            NativeMemory.free(buf);
        }
    }

    /** Peak heap used (sum of the heap pools' peaks) in bytes. */
    static long peakHeapUsed() {
        long sum = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            if (p.getType() == MemoryType.HEAP && p.getPeakUsage() != null) sum += p.getPeakUsage().getUsed();
        }
        return sum;
    }

    static String num(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.3f", v) : "null";
    }

    static String str(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }
}
