package io.postcopy.benchmarks.e2e;

import io.postcopy.fault.FaultStatistics;
import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationState;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.AccessPattern;
import io.postcopy.workload.LatencySummary;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The destination JVM of {@code benchmarks/e2e}: listens on 127.0.0.1, prints {@code PORT n}, accepts one
 * migration, starts a read-only checking workload at RUN (its threads time every access: the stall a guest
 * feels), and when the migration is complete stops it, writes the block's per-page digest and a flat JSON of
 * its side. Started by {@link E2eSource}.
 *
 * <pre>--result FILE --digest FILE --pattern random|sequential|hotset --threads N --backend anon|hugepage --warmup 64M --warmup-rounds 3</pre>
 */
public final class E2eDestination {
    private E2eDestination() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = E2eCommon.args(argv);
        Path result = Path.of(a.get("result")), digest = Path.of(a.get("digest"));
        AccessPattern pattern = switch (a.getOrDefault("pattern", "random")) {
            case "random", "uniform" -> AccessPattern.UNIFORM;
            case "sequential" -> AccessPattern.SEQUENTIAL;
            case "hotset" -> AccessPattern.HOTSET;
            default -> throw new IllegalArgumentException("--pattern random|sequential|hotset");
        };
        int threads = Integer.parseInt(a.getOrDefault("threads", "1"));
        boolean hugepage = "hugepage".equals(a.getOrDefault("backend", "anon"));
        int exit = 1;
        E2eCommon.warmUp(E2eCommon.parseSize(a.getOrDefault("warmup", "64M")),
                Integer.parseInt(a.getOrDefault("warmup-rounds", "3")));
        System.gc();
        try (E2eCommon.Side side = new E2eCommon.Side(hugepage)) {
            AtomicReference<Workload> load = new AtomicReference<>();
            AtomicLong runAt = new AtomicLong();
            // --threads 0: no guest here, the stream alone (what the migration moves when nothing competes for CPU)
            WorkloadOptions wo = threads == 0 ? null : WorkloadOptions.builder().threads(threads).pattern(pattern)
                    .writeFraction(0).checkReads(true).randomSeed(5).build();
            IncomingOptions opts = IncomingOptions.defaults().onRun(() -> {
                runAt.set(System.nanoTime());
                if (wo != null) load.set(Workloads.start(side.registry.byName(E2eCommon.BLOCK), wo));
            });
            if (System.getProperty("e2e.tls") != null)
                opts = opts.withTls(io.postcopy.migration.TlsOptions.of(java.nio.file.Path.of(System.getProperty("e2e.tls"))));
            IncomingListener l = side.service.listen(null, opts);
            System.out.println("PORT " + l.port());
            System.out.flush();
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (l.migrations().isEmpty()) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("no incoming migration in 2 min");
                Thread.sleep(5);
            }
            IncomingMigration in = l.migrations().get(0);
            MigrationState st = in.awaitCompletion(Duration.ofMinutes(20));
            long endAt = System.nanoTime();
            Workload w = load.get();
            long preemptions = guestPreemptions();
            if (w != null) w.stop();
            MigrationProgress p = in.progress();
            FaultStatistics fs = in.statistics().orElse(null);
            RamBlock block = side.registry.byName(E2eCommon.BLOCK);
            long peakBeforeDigest = E2eCommon.peakHeapUsed();
            if (st == MigrationState.COMPLETED && block != null) E2eCommon.writeDigest(block, digest);

            StringBuilder j = new StringBuilder("{\n");
            kv(j, "state", E2eCommon.str(st.name()));
            kv(j, "failure", E2eCommon.str(in.failure().orElse(null)));
            kv(j, "run_at_nanos", runAt.get() == 0 ? "null" : Long.toString(runAt.get()));
            kv(j, "run_to_end_ms", E2eCommon.num(runAt.get() == 0 ? Double.NaN : (endAt - runAt.get()) / 1e6));
            kv(j, "bytes_received", Long.toString(p.bytes()));
            kv(j, "pages", Long.toString(p.pages()));
            kv(j, "zero_pages", Long.toString(p.zeroPages()));
            kv(j, "remaining_pages", Long.toString(p.remainingPages()));
            kv(j, "discard_ranges", Long.toString(p.discardRanges()));
            kv(j, "requests_sent", Long.toString(p.requests()));
            if (fs != null) {
                kv(j, "faults", Long.toString(fs.faults()));
                kv(j, "requests", Long.toString(fs.requests()));
                kv(j, "dedup_received", Long.toString(fs.dedupReceived()));
                kv(j, "dedup_requested", Long.toString(fs.dedupRequested()));
                kv(j, "pages_placed", Long.toString(fs.pagesPlaced()));
                kv(j, "zero_pages_placed", Long.toString(fs.zeroPagesPlaced()));
                kv(j, "raced", Long.toString(fs.raced()));
                kv(j, "discards", Long.toString(fs.discards()));
                kv(j, "blocktime_us", Long.toString(fs.blocktimeMicros()));
                kv(j, "fault_to_place_p50_us", E2eCommon.num(fs.latency().p50()));
                kv(j, "fault_to_place_p99_us", E2eCommon.num(fs.latency().p99()));
                kv(j, "fault_to_place_max_us", E2eCommon.num(fs.latency().max()));
            }
            if (w == null) {
                kv(j, "workload_threads", "0");
                kv(j, "workload_read_mismatches", "0");    // no guest: nothing read
            } else {
                LatencySummary s = w.latency();
                kv(j, "workload_threads", Integer.toString(threads));
                kv(j, "workload_reads", Long.toString(w.reads()));
                kv(j, "workload_read_mismatches", Long.toString(w.readMismatches()));
                kv(j, "workload_failure", E2eCommon.str(w.failure() == null ? null : w.failure().toString()));
                kv(j, "workload_stalls", Long.toString(s.stalls()));
                kv(j, "workload_preemptions", Long.toString(preemptions));
                kv(j, "fault_latency_count", Long.toString(s.count()));
                kv(j, "fault_latency_p50_us", E2eCommon.num(s.p50Us()));
                kv(j, "fault_latency_p99_us", E2eCommon.num(s.p99Us()));
                kv(j, "fault_latency_p999_us", E2eCommon.num(s.p999Us()));
                kv(j, "fault_latency_max_us", E2eCommon.num(s.maxUs()));
                kv(j, "fault_latency_mean_us", E2eCommon.num(s.meanUs()));
            }
            kv(j, "heap_max_bytes", Long.toString(Runtime.getRuntime().maxMemory()));
            kv(j, "heap_peak_used_bytes", Long.toString(peakBeforeDigest));
            kv(j, "heap_peak_used_bytes_after_digest", Long.toString(E2eCommon.peakHeapUsed()));
            kv(j, "realtime_demotions", Long.toString(io.postcopy.uffd.UrgentThread.demotions()));
            kv(j, "gc_count", Long.toString(ManagementFactory.getGarbageCollectorMXBeans().stream()
                    .mapToLong(g -> Math.max(0, g.getCollectionCount())).sum()));
            j.setLength(j.length() - 2);
            j.append("\n}\n");
            Files.writeString(result, j);
            exit = st == MigrationState.COMPLETED ? 0 : 2;
        } catch (Throwable t) {
            t.printStackTrace();
            Files.writeString(result, "{\"state\": \"ERROR\", \"failure\": " + E2eCommon.str(t.toString()) + "}\n");
        }
        System.exit(exit);
    }

    private static void kv(StringBuilder j, String k, String v) {
        j.append("  \"").append(k).append("\": ").append(v).append(",\n");
    }

    /**
     * How often the kernel took the CPU from the guest's threads (nonvoluntary_ctxt_switches of the live threads
     * named workload-pc.ram*): each one stalls the access in progress for a time slice, whatever the migration
     * does, so it tells the workload's own latency tail from the fault path's.
     */
    static long guestPreemptions() {
        long n = 0;
        java.io.File[] tasks = new java.io.File("/proc/self/task").listFiles();
        if (tasks == null) return -1;
        for (java.io.File t : tasks) {
            try {
                if (!java.nio.file.Files.readString(t.toPath().resolve("comm")).startsWith("workload-" + E2eCommon.BLOCK)) continue;
                for (String line : java.nio.file.Files.readAllLines(t.toPath().resolve("status"))) {
                    if (line.startsWith("nonvoluntary_ctxt_switches:")) n += Long.parseLong(line.substring(27).trim());
                }
            } catch (java.io.IOException | RuntimeException gone) {
                // the thread ended while we looked
            }
        }
        return n;
    }
}
