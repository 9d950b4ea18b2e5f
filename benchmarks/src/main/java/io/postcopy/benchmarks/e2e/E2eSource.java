package io.postcopy.benchmarks.e2e;

import io.postcopy.migration.GuestControl;
import io.postcopy.migration.MigrationMode;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.migration.OutgoingOptions;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.DigestComparison;
import io.postcopy.workload.PageDigest;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The coordinator and source JVM of {@code benchmarks/e2e}: creates one block, fills it with the workload's
 * deterministic (random-looking) content, starts a writing workload on it (the guest, paused at the switch and
 * never resumed), spawns the destination JVM ({@link E2eDestination}), migrates, then compares the per-page
 * SHA-256 digests of both sides and writes the JSON result.
 *
 * <pre>--size 1G --mode postcopy|hybrid --precopy-seconds 2 --pattern random|sequential|hotset --threads 1
 * --backend anon|hugepage --json FILE --dest-heap 64m [--warmup 64M] [--warmup-rounds 3] [--preempt on|off] [--dest-jvm-opts "..."]
 * [--cpu-profile]</pre>
 * {@code --preempt} (default on): requested pages travel on a postcopy-preempt channel of their own.
 * {@code --realtime N} (default 1, the services' default): the threads on a request's way (fault, return path,
 * preempt channel) run SCHED_FIFO N while within {@code --realtime-percent} (default 50) % of one CPU; 0 = nice -5.
 * {@code --fault-realtime N} sets the destination's fault thread's apart.
 * {@code --bulk-nice N} (the service setting {@code bulkThreadNice} on both sides; default -1, the services'
 * default): the threads moving background pages in postcopy run at nice N, so the destination's guest wins the CPU
 * from them; 0 leaves them alone; -1 makes them yield (nice {@code --bulk-yield-nice}, default 5) only while the
 * guest faults.
 * {@code --max-bandwidth SIZE} (per second, binary units): pace the background pages (requested ones never wait).
 * {@code --prefetch N}: the source pushes up to N pages after a requested one while the guest reads on (the
 * migration's {@code prefetchMaxPages}; 0 = off; default: the service setting's default).
 * {@code --threads 0}: no guest on the destination, the stream alone (no faults, no latency figures).
 * {@code --source-guest-threads N} (default 1): writer threads on the source until the switch; 0 = none.
 * {@code --warmup}: each JVM first migrates a block of this size to itself (class loading, JNR stubs, JIT), as a
 * long-running source and destination would have done already; 0 measures cold JVMs. {@code --warmup-rounds N}
 * (default 3) such migrations, alternately with and without a reading guest, so that C2's code is stable.
 * {@code --cpu-profile} samples both JVMs' per-thread CPU time from /proc every 100 ms (costs some CPU itself).
 */
public final class E2eSource {
    private E2eSource() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = E2eCommon.args(argv);
        if (a.containsKey("realtime")) System.setProperty("e2e.fifo", a.get("realtime"));   // before any Side
        if (a.containsKey("fault-realtime")) System.setProperty("e2e.faultfifo", a.get("fault-realtime"));
        if (a.containsKey("realtime-percent")) System.setProperty("e2e.rtpercent", a.get("realtime-percent"));
        if (a.containsKey("bulk-nice")) System.setProperty("e2e.bulknice", a.get("bulk-nice"));
        if (a.containsKey("bulk-yield-nice")) System.setProperty("e2e.bulkyield", a.get("bulk-yield-nice"));
        // one QEMU-style directory with both ends' files (ca-cert, server-cert/key, client-cert/key)
        if (a.containsKey("tls-creds")) System.setProperty("e2e.tls", Path.of(a.get("tls-creds")).toAbsolutePath().toString());
        long size = E2eCommon.parseSize(a.getOrDefault("size", "1G"));
        String mode = a.getOrDefault("mode", "postcopy");
        if (!mode.equals("postcopy") && !mode.equals("hybrid")) throw new IllegalArgumentException("--mode postcopy|hybrid");
        double precopySeconds = Double.parseDouble(a.getOrDefault("precopy-seconds", "2"));
        String pattern = a.getOrDefault("pattern", "random");
        int threads = Integer.parseInt(a.getOrDefault("threads", "1"));
        String backend = a.getOrDefault("backend", "anon");
        if (!backend.equals("anon") && !backend.equals("hugepage")) throw new IllegalArgumentException("--backend anon|hugepage");
        String destHeap = a.getOrDefault("dest-heap", "64m");
        String preempt = a.getOrDefault("preempt", "on");
        if (!preempt.equals("on") && !preempt.equals("off")) throw new IllegalArgumentException("--preempt on|off");
        Path work = Files.createTempDirectory("e2e-");
        Path destJson = work.resolve("destination.json"), destDigest = work.resolve("destination.digest");
        boolean hugepage = backend.equals("hugepage");

        String warmup = a.getOrDefault("warmup", "64M");
        int exit = 1;
        Process dest = null;
        String warmupRounds = a.getOrDefault("warmup-rounds", "3");
        E2eCommon.warmUp(E2eCommon.parseSize(warmup), Integer.parseInt(warmupRounds));
        try (E2eCommon.Side side = new E2eCommon.Side(hugepage)) {
            RamBlock block = side.registry.create(E2eCommon.BLOCK, size,
                    hugepage ? RamBlock.Backing.HUGETLB : RamBlock.Backing.ANONYMOUS);
            long tf = System.nanoTime();
            Workload.fill(block, E2eCommon.CONTENT_SEED);
            System.err.printf(Locale.ROOT, "e2e: filled %d MiB in %.0f ms%n", size >> 20, (System.nanoTime() - tf) / 1e6);

            // the destination JVM
            List<String> cmd = new ArrayList<>();
            cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            cmd.add("-Xmx" + destHeap);
            for (String p : new String[] {"e2e.sndbuf", "e2e.rcvbuf", "e2e.staging", "e2e.fifo", "e2e.faultfifo", "e2e.rtpercent", "e2e.bulknice", "e2e.bulkyield", "e2e.tls"})
                if (System.getProperty(p) != null) cmd.add("-D" + p + "=" + System.getProperty(p));
            // after the source's own settings: an explicit destination option wins
            for (String o : a.getOrDefault("dest-jvm-opts", "").trim().split("\\s+")) if (!o.isEmpty()) cmd.add(o);
            cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), E2eDestination.class.getName(),
                    "--result", destJson.toString(), "--digest", destDigest.toString(), "--pattern", pattern,
                    "--threads", Integer.toString(threads), "--backend", backend, "--warmup", warmup, "--warmup-rounds", warmupRounds));
            dest = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            BufferedReader dout = new BufferedReader(new InputStreamReader(dest.getInputStream(), StandardCharsets.UTF_8));
            int port = -1;
            for (String line; (line = dout.readLine()) != null; ) {
                if (line.startsWith("PORT ")) {
                    port = Integer.parseInt(line.substring(5).trim());
                    break;
                }
                System.err.println("[destination] " + line);
            }
            if (port < 0) throw new IllegalStateException("the destination JVM exited without a port: " + cmd);
            Thread drain = new Thread(() -> {
                try {
                    for (String line; (line = dout.readLine()) != null; ) System.err.println("[destination] " + line);
                } catch (IOException ignored) {
                }
            }, "dest-stdout");
            drain.setDaemon(true);
            drain.start();

            // the source guest: writes pages (dirties them) until paused at the switch; never resumed
            int guestThreads = Integer.parseInt(a.getOrDefault("source-guest-threads", "1"));
            Workload guest = guestThreads == 0 ? null : Workloads.start(block, WorkloadOptions.builder()
                    .threads(guestThreads).writeFraction(1.0).contentSeed(E2eCommon.CONTENT_SEED).randomSeed(3).build());
            boolean profile = a.containsKey("cpu-profile");
            java.util.concurrent.atomic.AtomicLong pausedAt = new java.util.concurrent.atomic.AtomicLong();
            ThreadCpu.Sampler cpuSrc = profile ? new ThreadCpu.Sampler(ProcessHandle.current().pid()) : null;
            ThreadCpu.Sampler cpuDst = profile ? new ThreadCpu.Sampler(dest.pid()) : null;
            OutgoingOptions oo = OutgoingOptions.defaults().withBlocks(E2eCommon.BLOCK).withPostcopyPreempt(preempt.equals("on"))
                    .withMode(mode.equals("hybrid") ? MigrationMode.HYBRID : MigrationMode.POSTCOPY)
                    .withGuest(GuestControl.of(() -> {
                        pausedAt.set(System.nanoTime());       // the host's CLOCK_MONOTONIC, as the destination's
                        if (guest != null) guest.pause();
                    }, () -> { /* the source guest never runs again */ }));
            if (mode.equals("hybrid")) oo = oo.withPostcopyAfter(Duration.ofMillis((long) (precopySeconds * 1000)));
            if (a.containsKey("max-bandwidth")) oo = oo.withMaxBandwidth(E2eCommon.parseSize(a.get("max-bandwidth")));
            if (a.containsKey("prefetch")) oo = oo.withPrefetchMaxPages(Integer.parseInt(a.get("prefetch")));
            if (System.getProperty("e2e.tls") != null)
                oo = oo.withTls(io.postcopy.migration.TlsOptions.of(Path.of(System.getProperty("e2e.tls"))));
            long t0 = System.nanoTime();
            OutgoingMigration out = side.service.migrate(new InetSocketAddress("127.0.0.1", port), oo);
            MigrationState st = out.awaitCompletion(Duration.ofMinutes(20));
            long t1 = System.nanoTime();
            if (profile) {
                cpuSrc.stop();
                cpuDst.stop();
            }
            if (guest != null) guest.pause();
            long guestWrites = guest == null ? 0 : guest.writes();
            MigrationProgress p = out.progress();
            if (!dest.waitFor(20, TimeUnit.MINUTES)) throw new IllegalStateException("destination JVM did not exit");
            String dj = Files.exists(destJson) ? Files.readString(destJson) : "{}";

            long pagesTotal = size / Workload.PAGE_SIZE;
            long verified = 0, mismatched = -1;
            if (Files.exists(destDigest)) {
                DigestComparison c = PageDigest.compare(PageDigest.of(block), PageDigest.read(destDigest));
                verified = c.pages();
                mismatched = c.mismatched();
            }
            if (guest != null) guest.stop();

            double postcopyMs = p.postcopyNanos() / 1e6, totalMs = (t1 - t0) / 1e6;
            double gbps = p.postcopyNanos() == 0 ? 0 : p.postcopyPageBytes() / (p.postcopyNanos() / 1e9) / 1e9;
            StringBuilder j = new StringBuilder("{\n");
            kv(j, "size_bytes", Long.toString(size));
            kv(j, "mode", E2eCommon.str(mode));
            kv(j, "pattern", E2eCommon.str(pattern));
            kv(j, "threads", Integer.toString(threads));
            kv(j, "backend", E2eCommon.str(backend));
            kv(j, "preempt", E2eCommon.str(preempt));
            kv(j, "tls", System.getProperty("e2e.tls") != null ? "true" : "false");
            kv(j, "max_bandwidth", a.containsKey("max-bandwidth") ? Long.toString(E2eCommon.parseSize(a.get("max-bandwidth"))) : "0");
            kv(j, "realtime", a.getOrDefault("realtime", "1"));
            kv(j, "fault_realtime", a.getOrDefault("fault-realtime", a.getOrDefault("realtime", "1")));
            kv(j, "realtime_percent", a.getOrDefault("realtime-percent", "50"));
            kv(j, "realtime_demotions", Long.toString(io.postcopy.uffd.UrgentThread.demotions()));
            kv(j, "bulk_nice", a.getOrDefault("bulk-nice", "-1"));
            if (a.containsKey("bulk-yield-nice")) kv(j, "bulk_yield_nice", a.get("bulk-yield-nice"));
            if (mode.equals("hybrid")) kv(j, "precopy_seconds", E2eCommon.num(precopySeconds));
            kv(j, "dest_heap", E2eCommon.str(destHeap));
            kv(j, "warmup", E2eCommon.str(warmup));
            kv(j, "warmup_rounds", warmupRounds);
            kv(j, "state", E2eCommon.str(st.name()));
            kv(j, "failure", E2eCommon.str(out.failure().orElse(null)));
            kv(j, "dest_state", raw(dj, "state"));
            kv(j, "dest_failure", raw(dj, "failure"));
            kv(j, "total_ms", E2eCommon.num(totalMs));
            kv(j, "postcopy_ms", E2eCommon.num(postcopyMs));
            kv(j, "downtime_ms", out.downtime().map(d -> E2eCommon.num(d.toNanos() / 1e6)).orElse("null"));
            // the guest's own downtime: paused here, resumed there; both JVMs read one host's CLOCK_MONOTONIC
            String resumedAt = raw(dj, "run_at_nanos");
            kv(j, "downtime_to_guest_resumed_ms", resumedAt.equals("null") || pausedAt.get() == 0 ? "null"
                    : E2eCommon.num((Long.parseLong(resumedAt) - pausedAt.get()) / 1e6));
            kv(j, "downtime_to_package_sent_ms", out.downtimeToPackageSent().map(d -> E2eCommon.num(d.toNanos() / 1e6)).orElse("null"));
            kv(j, "bytes_sent", Long.toString(p.bytes()));
            kv(j, "postcopy_page_bytes", Long.toString(p.postcopyPageBytes()));
            kv(j, "throughput_gbps", E2eCommon.num(gbps));
            kv(j, "pages_sent", Long.toString(p.pages()));
            kv(j, "zero_pages_sent", Long.toString(p.zeroPages()));
            kv(j, "iterations", Integer.toString(p.iterations()));
            kv(j, "dirty_pages_last_scan", Long.toString(p.dirtyPages()));
            kv(j, "source_guest_writes", Long.toString(guestWrites));
            kv(j, "faults", raw(dj, "faults"));
            kv(j, "faults_per_gib", E2eCommon.num(parse(raw(dj, "faults")) / ((double) size / (1L << 30))));
            kv(j, "prefetch_max_pages", Integer.toString(oo.prefetchMaxPages()));    // -1: the service's setting
            kv(j, "prefetched_pages", Long.toString(p.prefetchedPages()));
            kv(j, "requests", raw(dj, "requests"));
            kv(j, "requests_served_by_source", Long.toString(p.requests()));
            kv(j, "requested_pages_out_of_order", Long.toString(p.requestedPages()));
            kv(j, "discard_ranges", Long.toString(p.discardRanges()));
            kv(j, "fault_latency_us", "{\"p50\": " + raw(dj, "fault_latency_p50_us") + ", \"p99\": "
                    + raw(dj, "fault_latency_p99_us") + ", \"p999\": " + raw(dj, "fault_latency_p999_us")
                    + ", \"max\": " + raw(dj, "fault_latency_max_us") + ", \"mean\": " + raw(dj, "fault_latency_mean_us")
                    + ", \"count\": " + raw(dj, "fault_latency_count") + "}");
            kv(j, "fault_to_place_us", "{\"p50\": " + raw(dj, "fault_to_place_p50_us") + ", \"p99\": "
                    + raw(dj, "fault_to_place_p99_us") + ", \"max\": " + raw(dj, "fault_to_place_max_us") + "}");
            kv(j, "dest_workload_reads", raw(dj, "workload_reads"));
            kv(j, "dest_workload_read_mismatches", raw(dj, "workload_read_mismatches"));
            kv(j, "pages_total", Long.toString(pagesTotal));
            kv(j, "pages_verified", Long.toString(verified));
            kv(j, "pages_mismatched", Long.toString(mismatched));
            kv(j, "dest_heap_max_bytes", raw(dj, "heap_max_bytes"));
            kv(j, "dest_heap_peak_used_bytes", raw(dj, "heap_peak_used_bytes"));
            kv(j, "dest_gc_count", raw(dj, "gc_count"));
            kv(j, "dest_workload_preemptions", raw(dj, "workload_preemptions"));
            kv(j, "dest_realtime_demotions", raw(dj, "realtime_demotions"));
            if (profile) {
                kv(j, "cpu_ms_by_thread_source", ThreadCpu.json(cpuSrc.result()));
                kv(j, "cpu_ms_by_thread_destination", ThreadCpu.json(cpuDst.result()));
            }
            kv(j, "load_average_at_end", E2eCommon.num(java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                    .getSystemLoadAverage()));
            kv(j, "destination", dj.trim());
            j.setLength(j.length() - 2);
            j.append("\n}\n");
            if (a.containsKey("json")) Files.writeString(Path.of(a.get("json")), j);
            System.out.println(j);
            boolean ok = st == MigrationState.COMPLETED && "\"COMPLETED\"".equals(raw(dj, "state"))
                    && mismatched == 0 && verified == pagesTotal && "0".equals(raw(dj, "workload_read_mismatches"));
            System.out.printf(Locale.ROOT, "e2e %s %s %s %dx%s: %s, total %.0f ms, postcopy %.0f ms, %.2f GB/s, "
                            + "%s faults, %s requests, %d discard ranges, latency p50 %s p99 %s p999 %s max %s us, "
                            + "%d/%d pages verified, %d mismatched, dest heap peak %.1f MiB of %s%n",
                    size >= 1L << 30 ? (size >> 30) + "G" : (size >> 20) + "M", mode, backend, threads, pattern,
                    ok ? "OK" : "FAILED " + out.failure().orElse("") + " " + raw(dj, "failure"), totalMs, postcopyMs, gbps,
                    raw(dj, "faults"), raw(dj, "requests"), p.discardRanges(), raw(dj, "fault_latency_p50_us"),
                    raw(dj, "fault_latency_p99_us"), raw(dj, "fault_latency_p999_us"), raw(dj, "fault_latency_max_us"),
                    verified, pagesTotal, mismatched, parse(raw(dj, "heap_peak_used_bytes")) / 1048576.0, destHeap);
            exit = ok ? 0 : 2;
            deleteQuietly(destDigest);
            deleteQuietly(destJson);
            deleteQuietly(work);
        } finally {
            if (dest != null && dest.isAlive()) dest.destroyForcibly();
        }
        System.exit(exit);
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
        }
    }

    private static double parse(String v) {
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            return Double.NaN;
        }
    }

    /** The raw JSON value of a top-level key of the destination's flat JSON, or null. */
    static String raw(String json, String key) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(key) + "\":\\s*(\"(?:[^\"\\\\]|\\\\.)*\"|[^,\\n}]+)").matcher(json);
        return m.find() ? m.group(1).trim() : "null";
    }

    private static void kv(StringBuilder j, String k, String v) {
        j.append("  \"").append(k).append("\": ").append(v).append(",\n");
    }

    /** CPU time per thread name of a process, from /proc/PID/task/TID/{comm,stat} (utime+stime, clock ticks). */
    static final class ThreadCpu {
        static Map<String, long[]> snapshot(long pid) {
            Map<String, long[]> m = new TreeMap<>();
            try (var tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
                for (Path t : (Iterable<Path>) tasks::iterator) {
                    try {
                        String stat = Files.readString(t.resolve("stat"));
                        String comm = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
                        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                        long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
                        // key by name and tid so threads of one name are summed in delta
                        m.put(comm.replaceAll("[0-9]+$", "#") + "\u0000" + t.getFileName(), new long[] {ticks});
                    } catch (IOException | RuntimeException ignored) {
                    }
                }
            } catch (IOException ignored) {
            }
            return m;
        }

        static Map<String, Long> delta(Map<String, long[]> a, Map<String, long[]> b) {
            Map<String, Long> out = new TreeMap<>();
            for (var e : b.entrySet()) {
                long before = a.containsKey(e.getKey()) ? a.get(e.getKey())[0] : 0;
                long ms = (e.getValue()[0] - before) * 10; // USER_HZ = 100
                if (ms > 0) out.merge(e.getKey().substring(0, e.getKey().indexOf('\u0000')), ms, Long::sum);
            }
            return out;
        }

        /**
         * Samples a process's threads every 100 ms from construction to {@link #stop()}, so threads that end before
         * the last sample still count (their last sampled CPU time); threads born meanwhile count from zero.
         */
        static final class Sampler {
            private final long pid;
            private final Map<String, long[]> first;
            private final Map<String, long[]> last = new TreeMap<>();
            private final Thread thread;
            private volatile boolean running = true;

            Sampler(long pid) {
                this.pid = pid;
                first = snapshot(pid);
                last.putAll(first);
                thread = new Thread(() -> {
                    while (running) {
                        Map<String, long[]> s = snapshot(pid);
                        synchronized (last) {
                            last.putAll(s);
                        }
                        try {
                            Thread.sleep(100);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                }, "cpu-sampler-" + pid);
                thread.setDaemon(true);
                thread.start();
            }

            void stop() throws InterruptedException {
                running = false;
                thread.join();
                Map<String, long[]> s = snapshot(pid);
                synchronized (last) {
                    last.putAll(s);
                }
            }

            Map<String, Long> result() {
                synchronized (last) {
                    return delta(first, last);
                }
            }
        }

        static String json(Map<String, Long> m) {
            StringBuilder b = new StringBuilder("{");
            m.entrySet().stream().sorted((x, y) -> Long.compare(y.getValue(), x.getValue())).forEach(e ->
                    b.append(b.length() > 1 ? ", " : "").append(E2eCommon.str(e.getKey())).append(": ").append(e.getValue()));
            return b.append('}').toString();
        }
    }
}
