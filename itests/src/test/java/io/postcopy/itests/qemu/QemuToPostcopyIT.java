package io.postcopy.itests.qemu;

import io.postcopy.codec.CommandType;
import io.postcopy.codec.ReturnPathType;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.migration.IncomingMigration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.condition.EnabledIf;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 7: an unmodified QEMU 7.2 source migrates its guest RAM with postcopy into OUR destination
 * ({@link JavaDestination}: the migration, fault and workload bundles' plain-Java API in this JVM). The same
 * guests, RAM size and modes as {@link QemuToQemuPostcopyIT}; our read-only workload starts at
 * {@code POSTCOPY_RUN} and its faults become page requests that QEMU serves. Checked per case: QEMU says
 * {@code completed}; every page of {@code pc.ram} equal (the source's memory-backend file vs our
 * {@code PageDigest}); QEMU's {@code postcopy-requests} = our request counter = the REQ_PAGES(_ID) decoded
 * from the recorded return path; every PING (also the one in the package) answered by its PONG, in order;
 * SHUT 0; every announced block created; the package's device sections kept opaque and counted; the pages
 * we counted = the pages recorded. With QEMU's postcopy-preempt capability on (source side), the same
 * migrations again: QEMU opens a second connection (the recording proxy forwards every connection), our
 * listener ties it to the migration (not listed as one of its own), and the requested pages arrive on it.
 */
@EnabledIf(value = "io.postcopy.itests.qemu.QemuToQemuPostcopyIT#qemuUsable",
        disabledReason = "QEMU, root or /dev/shm missing: see the SKIPPING banner / target/qemu-runs/SKIPPED.txt")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class QemuToPostcopyIT {
    static final Path RUNS = QemuToQemuPostcopyIT.RUNS.resolve("to-java");

    /** Which QEMU is the source: the system's 7.2 here; the QEMU 10.0 subclass overrides it. */
    QemuProcess.Qemu qemu() {
        return QemuProcess.Qemu.SYSTEM;
    }

    /** This class's work directory (one per QEMU version). */
    Path runs() {
        return qemu().major() == 7 ? RUNS : RUNS.resolveSibling(RUNS.getFileName() + "-qemu" + qemu().major());
    }
    static final long RAM = QemuToQemuPostcopyIT.RAM;
    static final Duration TIMEOUT = QemuToQemuPostcopyIT.MIGRATION_TIMEOUT;
    /** Our workload: 2 read-only threads, uniform random over pc.ram, 2000 pages/s each (leaves CPU to TCG). */
    static final int WORKLOAD_THREADS = 2;
    static final long WORKLOAD_RATE = 2000;
    /** QEMU must report a refused capability's migration as failed within this. */
    static final Duration REFUSAL_BOUND = Duration.ofSeconds(60);
    /** QEMU 7.2's capability for a second connection that carries the requested pages (source side only). */
    static final String PREEMPT = "postcopy-preempt";
    /** {@link io.postcopy.migration.IncomingMigration#postcopyChannel()}: "peer, N pages, M zero pages". */
    static final Pattern CHANNEL = Pattern.compile("(\\S+), (\\d+) pages, (\\d+) zero pages");

    private QemuProcess linuxSource;
    private final List<String> results = new ArrayList<>();

    @BeforeAll
    void workDirs() throws IOException {
        Files.createDirectories(runs());
    }

    @AfterAll
    void report() {
        if (linuxSource != null) {
            linuxSource.close();
        }
        StringBuilder b = new StringBuilder("\n===== " + qemu().label() + " (" + qemu().version() + ") -> our destination, postcopy (RAM " + RAM + " B, TCG) =====\n");
        results.forEach(r -> b.append(r).append('\n'));
        System.out.println(b);
        try {
            Files.writeString(runs().resolve("summary.txt"), b.toString());
        } catch (IOException ignored) {
            // report only
        }
    }

    // ---------------------------------------------------------------- migrations

    @Test
    @Order(1)
    void firmwareGuestPurePostcopy() throws Exception {
        assertPurePostcopy(firmware("firmware-pure", PostcopyMigration.Mode.pure()));
    }

    private static void assertPurePostcopy(Run run) {
        assertTrue(run.r.postcopyRequests > 0, "our workload's faults became requests QEMU served: " + run.r);
        // QEMU may send a little precopy before it acts on migrate-start-postcopy (144 KiB seen once)
        assertTrue(run.r.postcopyBytes > 10 * run.r.precopyBytes, "pure postcopy: (almost) all after the switch: " + run.r);
    }

    @Test
    @Order(2)
    void firmwareGuestHybrid() throws Exception {
        Run run = firmware("firmware-hybrid", QemuToQemuPostcopyIT.HYBRID);
        assertTrue(run.r.precopyBytes > (16L << 20), "precopy sent pages before the switch: " + run.r.precopyBytes);
        assertTrue(run.r.postcopyBytes > (8L << 20), "and postcopy the rest: " + run.r.postcopyBytes);
    }

    @Test
    @Order(3)
    void linuxGuestHybrid() throws Exception {
        assertHybridDiscards(linux("linux-hybrid", QemuToQemuPostcopyIT.HYBRID));
    }

    private static void assertHybridDiscards(Run run) {
        StreamStats s = run.r.stats;
        assertTrue(s.discardRanges > s.blocks.size(), "the guest's re-dirtied pages were discarded: "
                + PostcopyMigration.codecSummary(s));
        assertTrue(run.discardRanges > 0, "discards applied here");
    }

    @Test
    @Order(4)
    void linuxGuestPurePostcopy() throws Exception {
        Run run = linux("linux-pure", PostcopyMigration.Mode.pure());
        assertTrue(run.r.postcopyRequests > 0, "our workload's faults became requests QEMU served: " + run.r);
    }

    // ---------------------------------------------------------------- postcopy-preempt

    /**
     * postcopy-preempt, pure postcopy: QEMU 7.2 opens its preempt channel right after the main connection and
     * switches to postcopy a few milliseconds after migrate-start-postcopy (sent at once here), possibly
     * before the channel's 100 ms of silence have passed (the listener then ties it at the switch). When
     * preempt was refused, this case left QEMU postcopy-paused. Checked as the migrations above, plus the
     * channel ({@link #assertPostcopyChannel}).
     */
    @Test
    @Order(5)
    void firmwareGuestPurePostcopyWithPreempt() throws Exception {
        assertPurePostcopy(firmware("firmware-pure-preempt", PostcopyMigration.Mode.pure().withSourceCapability(PREEMPT)));
    }

    /** postcopy-preempt, hybrid: precopy while the guest dirties memory (the channel silent all along), then the switch. */
    @Test
    @Order(6)
    void linuxGuestHybridWithPreempt() throws Exception {
        assertHybridDiscards(linux("linux-hybrid-preempt", QemuToQemuPostcopyIT.HYBRID.withSourceCapability(PREEMPT)));
    }

    // ---------------------------------------------------------------- capabilities we refuse

    /**
     * xbzrle: QEMU sends XBZRLE records (RAM flag 0x40) for pages it sent before, changed since and still
     * has in its cache: from the third precopy pass on. The Linux guest keeps dirtying; unlimited bandwidth
     * and a 1 ms downtime limit keep precopy iterating (it cannot converge), so pass 3 comes within seconds.
     */
    @Test
    @Order(7)
    void xbzrleIsRefusedAndQemuFails() throws Exception {
        QemuGuests.Guest guest = QemuGuests.linux(QemuToQemuPostcopyIT.CACHE, QemuToQemuPostcopyIT.DIRTY_MIB, 64);
        if (linuxSource == null || !linuxSource.alive()) {
            linuxSource = QemuProcess.start(new QemuProcess.Config("linux-src", runs().resolve("linux-src")).ram(RAM).qemu(qemu())
                    .args(guest.args()));
            linuxSource.awaitSerial(guest.readyText(), Duration.ofSeconds(180));
        } else if (!"running".equals(linuxSource.qmp().runState())) {
            linuxSource.qmp().cont();
        }
        Thread.sleep(1000);
        refused("xbzrle", linuxSource, xbzrleParameters());
        assertEquals("running", linuxSource.qmp().runState(), "QEMU's guest runs on after the failed migration");
    }

    /** Parameters that keep precopy iterating until QEMU sends XBZRLE records (pass 3). */
    java.util.Map<String, Object> xbzrleParameters() {
        return java.util.Map.of("downtime-limit", 1L);
    }

    /** multifd: QEMU opens extra connections starting with the multifd magic 0x11223344; refused naming multifd. */
    @Test
    @Order(8)
    void multifdIsRefusedAndQemuFails() throws Exception {
        refusedOnFirmware("multifd");
    }

    /** compress: compressed pages (RAM flag 0x100) from the first pass on. */
    @Test
    @Order(9)
    void compressIsRefusedAndQemuFails() throws Exception {
        refusedOnFirmware("compress");
    }

    private void refusedOnFirmware(String capability) throws Exception {
        QemuGuests.Guest guest = QemuGuests.firmware(QemuToQemuPostcopyIT.CACHE, QemuToQemuPostcopyIT.BLOB_SEED,
                QemuToQemuPostcopyIT.BLOB_BYTES);
        try (QemuProcess src = QemuProcess.start(new QemuProcess.Config(capability + "-src", runs().resolve(capability + "-src"))
                .ram(RAM).qemu(qemu()).args(guest.args()))) {
            Thread.sleep(500);
            refused(capability, src, java.util.Map.of());
        }
    }

    /**
     * Migrates from {@code src} with postcopy-ram, return-path and {@code capability} on, straight to our
     * listener: QEMU must report {@code failed} within {@link #REFUSAL_BOUND} (not hang, not complete), and a
     * migration of ours must have failed with a message naming the capability; every connection we accepted
     * must end. The capability is switched off again afterwards.
     */
    private void refused(String capability, QemuProcess src, java.util.Map<String, Object> extraParams) throws Exception {
        Qmp q = src.qmp();
        java.util.Map<String, Boolean> caps = new java.util.LinkedHashMap<>(PostcopyMigration.CAPABILITIES);
        caps.put(capability, true);
        try (JavaDestination dst = new JavaDestination(capability + "-dst", 1, 100)) {
            q.migrateSetCapabilities(caps);
            java.util.Map<String, Object> params = new java.util.LinkedHashMap<>(extraParams);
            params.putIfAbsent("max-bandwidth", PostcopyMigration.UNLIMITED);
            q.migrateSetParameters(params);
            long t0 = System.nanoTime();
            q.migrate("tcp:127.0.0.1:" + dst.port());
            java.util.Map<String, Object> info = java.util.Map.of();
            String status = null;
            long deadline = t0 + REFUSAL_BOUND.toNanos();
            while (System.nanoTime() < deadline) {
                info = q.queryMigrate();
                status = String.valueOf(info.get("status"));
                if ("failed".equals(status) || "completed".equals(status) || "cancelled".equals(status)) {
                    break;
                }
                Thread.sleep(20);
            }
            long millis = (System.nanoTime() - t0) / 1_000_000;
            if (!"failed".equals(status) && !"completed".equals(status)) {
                q.execute("migrate_cancel");
            }
            List<String> failures = new ArrayList<>();
            for (IncomingMigration m : dst.listenerMigrations()) {
                io.postcopy.migration.MigrationState st = m.awaitCompletion(Duration.ofSeconds(15));
                assertTrue(st.isFinal(), m.id() + " ended: " + st);
                assertEquals(io.postcopy.migration.MigrationState.FAILED, st, m.id() + ": " + m.failure());
                failures.add(m.id() + ": " + m.failure().orElse("?"));
            }
            String line = String.format("  %s refused: QEMU %s after %d ms (%s); our %d connection(s): %s",
                    capability, status, millis, info.get("error-desc"), failures.size(), failures);
            results.add(line);
            System.out.println(line);
            assertEquals("failed", status, capability + ": QEMU must see a failed migration within " + REFUSAL_BOUND + ": " + info);
            assertTrue(failures.stream().anyMatch(f -> f.contains("capability " + capability + " is not supported")),
                    "a refusal naming " + capability + ": " + failures);
        } finally {
            q.migrateSetCapabilities(java.util.Map.of(capability, false));
        }
    }

    // ---------------------------------------------------------------- helpers

    /** One verified migration and our destination's own figures. */
    record Run(PostcopyMigration.Result r, long requests, long discardRanges, FaultStatistics faults) {
    }

    private Run firmware(String label, PostcopyMigration.Mode mode) throws Exception {
        QemuGuests.Guest guest = QemuGuests.firmware(QemuToQemuPostcopyIT.CACHE, QemuToQemuPostcopyIT.BLOB_SEED,
                QemuToQemuPostcopyIT.BLOB_BYTES);
        try (QemuProcess src = QemuProcess.start(new QemuProcess.Config(label + "-src", runs().resolve(label + "-src"))
                .ram(RAM).qemu(qemu()).args(guest.args()))) {
            Thread.sleep(500); // firmware up and idle
            Run run = migrateAndVerify(label, src, mode);
            // the blob itself, page by page, in our pc.ram
            byte[] blob = QemuGuests.blobBytes(QemuToQemuPostcopyIT.BLOB_SEED, QemuToQemuPostcopyIT.BLOB_BYTES);
            byte[] dst = Files.readAllBytes(runs().resolve(label).resolve("destination-pc.ram.sha256"));
            long first = QemuGuests.BLOB_ADDRESS / PageDigest.PAGE;
            int bad = 0;
            for (int i = 0; i < QemuToQemuPostcopyIT.BLOB_BYTES / PageDigest.PAGE; i++) {
                byte[] h = PageDigest.ofPage(Arrays.copyOfRange(blob, i * PageDigest.PAGE, (i + 1) * PageDigest.PAGE));
                int o = (int) ((first + i) * PageDigest.HASH);
                if (!Arrays.equals(h, 0, 32, dst, o, o + 32)) {
                    bad++;
                }
            }
            assertEquals(0, bad, label + ": blob pages differing in our pc.ram");
            return run;
        }
    }

    private Run linux(String label, PostcopyMigration.Mode mode) throws Exception {
        QemuGuests.Guest guest = QemuGuests.linux(QemuToQemuPostcopyIT.CACHE, QemuToQemuPostcopyIT.DIRTY_MIB, 64);
        if (linuxSource == null || !linuxSource.alive()) {
            long t = System.nanoTime();
            linuxSource = QemuProcess.start(new QemuProcess.Config("linux-src", runs().resolve("linux-src")).ram(RAM).qemu(qemu())
                    .args(guest.args()));
            linuxSource.awaitSerial(guest.readyText(), Duration.ofSeconds(180));
            System.out.printf("linux guest booted and dirtying after %d ms%n", (System.nanoTime() - t) / 1_000_000);
            Thread.sleep(1000);
        } else {
            // the previous migration left the source paused in postmigrate: run the guest again
            linuxSource.qmp().cont();
            assertEquals("running", linuxSource.qmp().runState());
            Thread.sleep(1500);
        }
        return migrateAndVerify(label, linuxSource, mode);
    }

    /**
     * The postcopy-preempt channel of a finished migration, as our destination and the recording see it: the
     * destination names the proxy's second connection as its channel and received pages on it (requested
     * pages really travelled there); the recording of that connection decodes as a postcopy channel ended by
     * one EOS (QEMU 7.2; 8.0+ sends none), with the same page counts, only pages we requested on the return path, and nothing sent back.
     *
     * @return {pages, zero pages} on the channel
     */
    private static long[] assertPostcopyChannel(PostcopyMigration.Result r, JavaDestination dst, boolean eosOnPreemptChannel) {
        String described = dst.postcopyChannel().orElseThrow(() -> new AssertionError(
                "postcopy-preempt on, but our migration has no postcopy channel: " + r));
        Matcher mt = CHANNEL.matcher(described);
        assertTrue(mt.matches(), "postcopyChannel(): " + described);
        long pages = Long.parseLong(mt.group(2));
        long zeroPages = Long.parseLong(mt.group(3));
        RecordingProxy.Connection extra = r.connections.get(1);
        assertEquals(extra.destinationSide(), mt.group(1), "the channel is QEMU's second connection: " + r.connections);
        assertTrue(pages > 0, "requested pages arrived on the postcopy-preempt channel: " + described);
        assertTrue(r.postcopyRequests > 0, "QEMU served page requests: " + r);

        StreamStats.PostcopyChannelStats rec = r.extraChannels.get(0);
        if (eosOnPreemptChannel) {
            assertTrue(rec.eos() && rec.trailing() == 0, "the recorded channel ends with one EOS: " + rec);
        } else {
            // QEMU 8.0+ (unless x-preempt-pre-7-2) ends the channel without EOS: whole records, nothing after the last
            assertTrue(!rec.eos() && rec.trailing() == 0, "the recorded channel ends after whole records, no EOS: " + rec);
        }
        assertEquals(pages, rec.pages(), "pages on the channel: ours = recorded (" + rec + ")");
        assertEquals(zeroPages, rec.zeroPages(), "zero pages on the channel: ours = recorded (" + rec + ")");
        assertEquals(0, extra.returnPathBytes(), "nothing written back on the preempt channel");
        List<String> unrequested = rec.pageKeys().stream().filter(k -> !r.stats.requestedPages.contains(k)).sorted().toList();
        assertTrue(unrequested.isEmpty(), "only requested pages on the preempt channel; not requested: "
                + unrequested.subList(0, Math.min(10, unrequested.size())) + " (" + unrequested.size() + ")");
        return new long[] {pages, zeroPages};
    }

    private Run migrateAndVerify(String label, QemuProcess src, PostcopyMigration.Mode mode) throws Exception {
        Path dir = runs().resolve(label);
        try (JavaDestination dst = new JavaDestination(label + "-dst", WORKLOAD_THREADS, WORKLOAD_RATE)) {
            PostcopyMigration.Result r = PostcopyMigration.run(label, src, dst, mode, dir, TIMEOUT);
            results.add(r.toString());
            System.out.println(r);
            IncomingMigration m = dst.migration().orElseThrow();
            StreamStats s = r.stats;
            assertEquals("completed", r.status);
            assertEquals("postmigrate", r.sourceState);
            assertEquals(RAM / PageDigest.PAGE, r.comparison.pagesCompared(), r.comparison.toString());
            assertTrue(r.comparison.equal(), r.comparison.toString());

            // the return path: SHUT 0 last, every PING answered with its value, in order
            assertEquals(0, s.shutStatus, "SHUT 0 on the return path");
            assertEquals(1, s.count(ReturnPathType.SHUT));
            assertEquals(1, s.packageCommands.getOrDefault(CommandType.PING, 0), "QEMU's package holds a PING: " + s);
            assertTrue(s.pings.size() >= 4, "PINGs 1..4 (one in the package): " + s.pings);
            assertEquals(s.pings, s.pongs, "a PONG for every PING, same values, same order");

            // page requests: QEMU's counter = ours = the decoded return path
            long ours = dst.requests();
            assertEquals(r.postcopyRequests, s.requests, "QEMU's postcopy-requests = requests decoded from the return path");
            assertEquals(r.postcopyRequests, ours, "QEMU's postcopy-requests = our request counter");
            FaultStatistics fs = dst.faultStatistics().orElseThrow();
            assertEquals(ours, fs.requests(), "the fault service's requests = the migration's");
            assertEquals(fs.faults(), fs.requests() + fs.dedupReceived() + fs.dedupRequested());

            // what QEMU announced, we created; device state kept opaque, counted
            assertEquals(new HashSet<>(s.blocks), new HashSet<>(dst.blockNames()), "every announced block created, no prefix");
            assertEquals(s.deviceSections, dst.opaqueSections(), "every device section of the package kept opaque");
            assertTrue(dst.opaqueSections() > 20 && dst.opaqueBytes() > 1000, dst.report());
            assertEquals(s.discardRanges, m.progress().discardRanges(), "every discard range applied");
            assertTrue(dst.workloadReads() > 0, "the workload ran from RUN");

            // the connections: one migration listed; with postcopy-preempt a second connection, its channel
            assertEquals(List.of(m.id()), dst.listenerMigrations().stream().map(IncomingMigration::id).toList(),
                    "the listener lists the one migration (an extra connection is no migration of its own)");
            boolean preempt = mode.sourceCapabilities().contains(PREEMPT);
            assertEquals(preempt ? 2 : 1, r.connections.size(), "connections QEMU opened: " + r.connections);
            long channelPages = 0;
            long channelZeroPages = 0;
            if (preempt) {
                long[] ch = assertPostcopyChannel(r, dst, qemu().major() < 8);
                channelPages = ch[0];
                channelZeroPages = ch[1];
            } else {
                assertEquals(java.util.Optional.empty(), dst.postcopyChannel(), "no postcopy-preempt channel");
            }
            assertEquals(s.pages + channelPages, m.progress().pages(), "pages we counted = pages recorded");
            assertEquals(s.zeroPages + channelZeroPages, m.progress().zeroPages(), "zero pages we counted = recorded");

            String line = String.format("  %s: ours: requests %d, faults %d, fault->placement p50 %.0f us p99 %.0f us max %.0f us;"
                            + " workload access p99 %.0f us max %.0f us, stalls>1ms %d of %d reads; throughput %.3f GB/s%s",
                    label, ours, fs.faults(), fs.latency().p50(), fs.latency().p99(), fs.latency().max(),
                    dst.workloadLatency().p99Us(), dst.workloadLatency().maxUs(), dst.workloadLatency().stalls(),
                    dst.workloadReads(), m.progress().throughputGBps(),
                    preempt ? "; preempt channel " + channelPages + " pages + " + channelZeroPages + " zero pages" : "");
            results.add(line);
            System.out.println(line);
            return new Run(r, ours, m.progress().discardRanges(), fs);
        }
    }
}
