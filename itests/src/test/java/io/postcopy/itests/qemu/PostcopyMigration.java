package io.postcopy.itests.qemu;

import io.postcopy.codec.CommandType;
import io.postcopy.codec.ReturnPathType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Drives one postcopy migration from a QEMU 7.2 source to a {@link MigrationDestination} through a
 * {@link RecordingProxy}, then verifies it: the source must be {@code completed} and {@code postmigrate};
 * its {@code pc.ram} (the memory-backend file, hashed per 4 KiB page) must equal the destination's page for
 * page; both directions of the stream are decoded with our codec.
 */
public final class PostcopyMigration {
    public static final Map<String, Boolean> CAPABILITIES = Map.of("postcopy-ram", true, "return-path", true);
    /** "High" bandwidth: 100 GiB/s, i.e. no throttling on loopback. */
    public static final long UNLIMITED = 100L << 30;

    /**
     * Pure postcopy (switch at once), or hybrid (precopy for a while, throttled so it cannot finish, then
     * switch); {@code sourceCapabilities}: capabilities switched on for this migration on the source only,
     * besides {@link #CAPABILITIES} (e.g. {@code postcopy-preempt}), and off again afterwards.
     */
    public record Mode(String name, Duration precopy, long precopyBandwidth, Set<String> sourceCapabilities) {
        public static Mode pure() {
            return new Mode("pure", Duration.ZERO, UNLIMITED, Set.of());
        }

        public static Mode hybrid(Duration precopy, long precopyBandwidth) {
            return new Mode("hybrid", precopy, precopyBandwidth, Set.of());
        }

        /** This mode with {@code capability} on at the source too. */
        public Mode withSourceCapability(String capability) {
            Set<String> caps = new java.util.LinkedHashSet<>(sourceCapabilities);
            caps.add(capability);
            return new Mode(name + "+" + capability, precopy, precopyBandwidth, Set.copyOf(caps));
        }

        public boolean isPure() {
            return precopy.isZero();
        }
    }

    /** What happened, for assertions and the report. */
    public static final class Result {
        public String label;
        public String status;
        public long totalMillis;
        /** From {@code migrate-start-postcopy} to {@code completed} (wall clock, seen by polling). */
        public long postcopyMillis;
        /** From {@code migrate} to the first {@code postcopy-active}. */
        public long switchMillis;
        public Map<String, Object> finalInfo = Map.of();
        /** QEMU's {@code ram.precopy-bytes} / {@code ram.postcopy-bytes} of the finished migration. */
        public long precopyBytes;
        public long postcopyBytes;
        public long transferred;
        public long postcopyRequests;
        public long dirtySyncCount;
        public PageDigest.Comparison comparison;
        public StreamStats stats;
        /** Connections QEMU opened (through the proxy): 1, or 2 with postcopy-preempt. */
        public List<RecordingProxy.Connection> connections = List.of();
        /** The extra connections (index 1, 2, ...), decoded as postcopy-preempt channels. */
        public List<StreamStats.PostcopyChannelStats> extraChannels = new ArrayList<>();
        public String sourceState;
        public String destinationReport;
        public long touchMillis = -1;

        @SuppressWarnings("unchecked")
        static long ram(Map<String, Object> info, String key) {
            Object ram = info.get("ram");
            if (ram instanceof Map) {
                Object v = ((Map<String, Object>) ram).get(key);
                if (v instanceof Number) {
                    return ((Number) v).longValue();
                }
            }
            return -1;
        }

        @Override
        public String toString() {
            StringBuilder b = new StringBuilder();
            b.append(String.format("%-16s %s: total %d ms (QEMU total-time %s ms), switch after %d ms, postcopy %d ms, "
                            + "transferred %d B (precopy %d B, postcopy %d B), postcopy-requests %d, dirty-sync-count %d",
                    label, status, totalMillis, finalInfo.get("total-time"), switchMillis, postcopyMillis, transferred,
                    precopyBytes, postcopyBytes, postcopyRequests, dirtySyncCount));
            if (touchMillis >= 0) {
                b.append(", destination reads took ").append(touchMillis).append(" ms");
            }
            b.append("\n    verify: ").append(comparison);
            b.append("\n    codec:  ").append(stats);
            if (connections.size() > 1) {
                b.append("\n    extra connections: ").append(connections.subList(1, connections.size()))
                        .append("; decoded: ").append(extraChannels);
            }
            b.append("\n    source ").append(sourceState).append("; ").append(destinationReport);
            return b.toString();
        }
    }

    private PostcopyMigration() {
    }

    /**
     * Runs the migration and verifies it (see the class comment). Throws on anything that is not a
     * {@code completed} migration; a page mismatch is reported in the result (the caller asserts).
     */
    public static Result run(String label, QemuProcess source, MigrationDestination dest, Mode mode, Path workDir,
                             Duration timeout) throws IOException, InterruptedException {
        Files.createDirectories(workDir);
        Result r = new Result();
        r.label = label;
        Qmp src = source.qmp();
        dest.prepare();
        Map<String, Boolean> caps = new LinkedHashMap<>(CAPABILITIES);
        mode.sourceCapabilities().forEach(c -> caps.put(c, true));
        src.migrateSetCapabilities(caps);
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("max-bandwidth", mode.precopyBandwidth());
        params.put("max-postcopy-bandwidth", 0L); // 0 = unlimited once in postcopy
        src.migrateSetParameters(params);

        Throwable failure = null;
        try (RecordingProxy proxy = new RecordingProxy(dest.port(), workDir)) {
            long t0 = System.nanoTime();
            src.migrate("tcp:127.0.0.1:" + proxy.port());
            if (!mode.isPure()) {
                long until = t0 + mode.precopy().toNanos();
                while (System.nanoTime() < until) {
                    String st = String.valueOf(src.queryMigrate().get("status"));
                    if (!"active".equals(st) && !"setup".equals(st)) {
                        throw new IOException(label + ": precopy ended before the switch (status " + st + ")");
                    }
                    Thread.sleep(50);
                }
                Map<String, Object> before = src.queryMigrate();
                if (!"active".equals(before.get("status"))) {
                    throw new IOException(label + ": not in precopy at the switch: " + before);
                }
            }
            long tSwitch = System.nanoTime();
            src.migrateStartPostcopy();

            AtomicReference<Throwable> touchFailure = new AtomicReference<>();
            Thread toucher = null;
            String status = null;
            Map<String, Object> info = Map.of();
            long deadline = t0 + timeout.toNanos();
            while (System.nanoTime() < deadline) {
                info = src.queryMigrate();
                status = String.valueOf(info.get("status"));
                if (r.switchMillis == 0 && ("postcopy-active".equals(status) || "completed".equals(status))) {
                    r.switchMillis = (System.nanoTime() - t0) / 1_000_000;
                    toucher = new Thread(() -> {
                        long a = System.nanoTime();
                        try {
                            dest.touchDuringPostcopy();
                            r.touchMillis = (System.nanoTime() - a) / 1_000_000;
                        } catch (Throwable e) {
                            touchFailure.set(e);
                        }
                    }, "touch-" + dest.name());
                    toucher.setDaemon(true);
                    toucher.start();
                }
                if ("completed".equals(status) || "failed".equals(status) || "cancelled".equals(status)
                        || "postcopy-paused".equals(status)) { // paused = the stream broke: no point waiting
                    break;
                }
                Thread.sleep(20);
            }
            long tEnd = System.nanoTime();
            r.status = status;
            r.finalInfo = info;
            r.totalMillis = (tEnd - t0) / 1_000_000;
            r.postcopyMillis = (tEnd - tSwitch) / 1_000_000;
            r.transferred = Result.ram(info, "transferred");
            r.postcopyRequests = Result.ram(info, "postcopy-requests");
            r.dirtySyncCount = Result.ram(info, "dirty-sync-count");
            r.precopyBytes = Result.ram(info, "precopy-bytes");
            r.postcopyBytes = Result.ram(info, "postcopy-bytes");
            if (!"completed".equals(status)) {
                throw new IOException(label + ": source migration " + status + ": " + info + "; logs in " + workDir);
            }
            dest.awaitCompleted(Duration.ofSeconds(60));
            if (toucher != null) {
                toucher.join(60_000);
                if (touchFailure.get() != null) {
                    throw new IOException(label + ": reading destination memory during postcopy failed", touchFailure.get());
                }
            }
            if (!proxy.awaitEnd(30_000)) {
                throw new IOException(label + ": the proxied connection did not end");
            }
            if (proxy.failure() != null) {
                throw new IOException(label + ": proxy failed", proxy.failure());
            }
            r.sourceState = src.runState();
            r.destinationReport = dest.report();

            byte[] expected = PageDigest.ofFile(source.ramFile(), 0, source.ramBytes());
            byte[] actual = dest.ramDigest("pc.ram");
            Files.write(workDir.resolve("source-pc.ram.sha256"), expected);
            Files.write(workDir.resolve("destination-pc.ram.sha256"), actual);
            r.comparison = PageDigest.compare(label + " pc.ram", expected, actual);

            r.stats = StreamStats.decode(proxy.streamFile(), proxy.returnPathFile());
            r.connections = proxy.connections();
            for (RecordingProxy.Connection c : r.connections.subList(1, r.connections.size())) {
                r.extraChannels.add(r.stats.decodePostcopyChannel(c.streamFile()));
            }
            if (!Boolean.getBoolean("qemu.keepStreams") && r.comparison.equal()) {
                Files.deleteIfExists(proxy.streamFile()); // hundreds of MiB; the return path is small and stays
            }
        } catch (IOException | InterruptedException | RuntimeException | Error e) {
            failure = e;
            throw e;
        } finally {
            if (!mode.sourceCapabilities().isEmpty()) {
                // off again: the source may be migrated again (the Linux guest is); fails if QEMU still migrates
                Map<String, Boolean> off = new LinkedHashMap<>();
                mode.sourceCapabilities().forEach(c -> off.put(c, false));
                try {
                    src.migrateSetCapabilities(off);
                } catch (IOException e) {
                    if (failure == null) {
                        throw e;
                    }
                    failure.addSuppressed(e);
                }
            }
        }
        return r;
    }

    /** Figures of one decoded run that the tests look at. */
    public static String codecSummary(StreamStats s) {
        return "discard commands " + s.count(CommandType.POSTCOPY_RAM_DISCARD) + ", ranges " + s.discardRanges
                + ", REQ_PAGES_ID " + s.count(ReturnPathType.REQ_PAGES_ID) + ", REQ_PAGES " + s.count(ReturnPathType.REQ_PAGES);
    }
}
