package io.postcopy.itests.qemu;

import io.postcopy.itests.KarafInstance;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Issue 7, the Karaf way: an unmodified QEMU 7.2 source migrates into {@code postcopy:listen PORT} of the
 * distribution, run as an administrator runs it ({@link KarafInstance}: unpacked under
 * {@code target/qemu-runs/to-karaf/}, free ports, {@code bin/start}, {@code bin/client}, {@code bin/stop}), and
 * the migration is verified with the shell's own commands. Karaf listens with a read-only uniform workload
 * started at RUN and no block prefix (QEMU's block names are kept). The firmware-only guest of
 * {@link QemuToPostcopyIT} (pc.ram in a /dev/shm file, 256 MiB + 8 KiB, TCG) migrates with postcopy-ram,
 * return-path and postcopy-preempt on the source, {@code migrate} then {@code migrate-start-postcopy} at once
 * (pure postcopy), straight to Karaf's port. Checked: QEMU {@code completed} and {@code postmigrate};
 * {@code postcopy:status} lists one incoming migration (the preempt channel is not one of its own), COMPLETED,
 * and the listener with 1 accepted; its detail shows all pages, {@code Requests} &gt; 0 and equal to QEMU's
 * {@code postcopy-requests}, and a {@code Preempt} line naming a second peer that carried pages;
 * {@code postcopy:digest pc.ram FILE} equals the source's pc.ram file page for page (and holds the guest's
 * blob); the listener's workload on pc.ram read and never wrote ({@code postcopy:workload stop}). Karaf and QEMU are
 * always stopped afterwards (QEMU killed after 3 s, Karaf's JVM by its pid after 30 s).
 */
@EnabledIf(value = "io.postcopy.itests.qemu.QemuToQemuPostcopyIT#qemuUsable",
        disabledReason = "QEMU, root or /dev/shm missing: see the SKIPPING banner / target/qemu-runs/SKIPPED.txt")
@org.junit.jupiter.api.TestMethodOrder(org.junit.jupiter.api.MethodOrderer.OrderAnnotation.class)
class QemuToKarafIT {
    static final Path ROOT = QemuToQemuPostcopyIT.RUNS.resolve("to-karaf");
    static final long RAM = QemuToQemuPostcopyIT.RAM;
    static final long PAGES = RAM / PageDigest.PAGE; // 65538
    static final Duration MIGRATION_TIMEOUT = Duration.ofSeconds(60);
    /** postcopy:status detail, destination side: {@code Preempt    127.0.0.1:PORT, N pages, M zero pages}. */
    static final Pattern PREEMPT = Pattern.compile("\\nPreempt    127\\.0\\.0\\.1:(\\d+), (\\d+) pages, (\\d+) zero pages\\r?\\n");

    private static final Set<Integer> TAKEN = new HashSet<>();
    private static KarafInstance karaf;
    private static QemuProcess source;
    private static Path run;
    private static volatile boolean passed;

    @BeforeAll
    static void startKaraf() throws Exception {
        File archive = KarafInstance.distribution();
        Files.createDirectories(ROOT);
        run = Files.createTempDirectory(ROOT, "run-");
        karaf = KarafInstance.unpack(archive, run.resolve("karaf"), "karaf", TAKEN);
        karaf.start();
        karaf.awaitShell();
    }

    @AfterAll
    static void stopQemuAndKaraf() {
        if (source != null) {
            source.close(); // SIGTERM, SIGKILL after 3 s; deletes the /dev/shm RAM file
        }
        if (karaf != null) {
            karaf.stop(); // bin/stop, the JVM of karaf.pid killed if still there after 30 s
        }
        if (passed && run != null) { // a failed run keeps its folders (karaf.log, qemu.log) for the diagnosis
            KarafInstance.deleteTree(run);
        }
    }

    @Test
    @org.junit.jupiter.api.Order(1)     // it counts the migrations in postcopy:status: before the recovery's
    void qemuMigratesIntoPostcopyListenWithPreemptVerifiedByStatusAndDigest() throws Exception {
        long t0 = System.nanoTime();
        // Karaf: the destination, as an administrator types it
        int port = KarafInstance.freePort(TAKEN);
        // one reader, on pc.ram only (QEMU's ROM blocks need none), reads not checked: QEMU's memory is no workload image
        String l = karaf.client("postcopy:listen --qemu-preempt --workload uniform --workload-blocks pc.ram --no-check " + port);
        assertTrue(l.contains("Listening on 127.0.0.1:" + port + " as listen-" + port
                + ", uniform reader at RUN on pc.ram, reads not checked"), l);
        assertFalse(l.contains("block prefix"), "no prefix: QEMU's block names are kept\n" + l);

        // QEMU: the firmware-only guest, as in QemuToPostcopyIT
        QemuGuests.Guest guest = QemuGuests.firmware(QemuToQemuPostcopyIT.CACHE, QemuToQemuPostcopyIT.BLOB_SEED,
                QemuToQemuPostcopyIT.BLOB_BYTES);
        source = QemuProcess.start(new QemuProcess.Config("karaf-src", run.resolve("qemu-src")).ram(RAM).args(guest.args()));
        Qmp q = source.qmp();
        assertEquals("running", q.runState(), "the source guest runs");
        Map<String, Boolean> caps = new LinkedHashMap<>();
        caps.put("postcopy-ram", true);
        caps.put("return-path", true);
        caps.put("postcopy-preempt", true);
        q.migrateSetCapabilities(caps);
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("max-bandwidth", PostcopyMigration.UNLIMITED);
        params.put("max-postcopy-bandwidth", 0L); // unlimited in postcopy
        q.migrateSetParameters(params);

        long tMigrate = System.nanoTime();
        q.migrate("tcp:127.0.0.1:" + port);
        q.migrateStartPostcopy(); // at once: pure postcopy
        Map<String, Object> info = Map.of();
        String status = null;
        long deadline = tMigrate + MIGRATION_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            info = q.queryMigrate();
            status = String.valueOf(info.get("status"));
            if ("completed".equals(status) || "failed".equals(status) || "cancelled".equals(status)
                    || "postcopy-paused".equals(status)) { // paused: the stream broke, it will not complete
                break;
            }
            Thread.sleep(20); // poll interval
        }
        long migrationMillis = (System.nanoTime() - tMigrate) / 1_000_000;
        System.out.println("QEMU query-migrate after " + migrationMillis + " ms: " + info);
        assertEquals("completed", status, "QEMU's migration: " + info + "\nkaraf.log tail:\n" + karaf.logTail());
        assertEquals("postmigrate", q.runState(), "the source stays paused after the migration");
        long qemuRequests = PostcopyMigration.Result.ram(info, "postcopy-requests");
        // the source is paused for good: its pc.ram file is the content the destination must hold
        byte[] expected = PageDigest.ofFile(source.ramFile(), 0, RAM);

        // The listener's reader has done its part (faults during postcopy); stopped, so that it does not slow every
        // later command down. It read and never wrote; the ROM blocks got none.
        String stopped = karaf.client("postcopy:workload stop pc.ram; postcopy:workload list");
        assertTrue(stopped.contains("Stopped workload on block pc.ram: "), stopped);
        assertTrue(stopped.contains("no workloads"), "the ROM blocks got no reader:\n" + stopped);
        assertFalse(stopped.contains("\nFailed: "), stopped);
        Matcher ws = Pattern.compile("Stopped workload on block pc\\.ram: (\\d+) reads?, (\\d+) writes?").matcher(stopped);
        assertTrue(ws.find(), stopped);
        assertTrue(Long.parseLong(ws.group(1)) > 0, "the reader on pc.ram read:\n" + stopped);
        assertEquals(0, Long.parseLong(ws.group(2)), "the reader on pc.ram never wrote:\n" + stopped);

        // postcopy:status, the list: one incoming migration (the preempt channel is none of its own), COMPLETED
        String table = "";
        String in = null;
        long tableDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        Pattern row = Pattern.compile("\\n(in-\\d+) +\\| in  \\| 127\\.0\\.0\\.1:\\d+ +\\| (\\w+) ");
        while (System.nanoTime() < tableDeadline) {
            table = karaf.client("postcopy:status");
            List<String[]> rows = new ArrayList<>();
            for (Matcher m = row.matcher(table); m.find(); ) {
                rows.add(new String[] {m.group(1), m.group(2)});
            }
            assertEquals(1, rows.size(), "one incoming migration listed:\n" + table);
            String state = rows.get(0)[1];
            if ("COMPLETED".equals(state)) {
                in = rows.get(0)[0];
                break;
            }
            assertFalse(state.equals("FAILED") || state.equals("CANCELLED"), "Karaf's migration ended badly:\n" + table);
            Thread.sleep(500); // poll interval
        }
        if (in == null) fail("no COMPLETED incoming migration in Karaf within 30 s:\n" + table);
        assertTrue(table.contains("Listeners: listen-" + port + " on 127.0.0.1:" + port + " (1 accepted)"), table);

        // postcopy:status ID, the detail
        String detail = karaf.client("postcopy:status " + in);
        int mainPeerPort = Integer.parseInt(group("Migration  " + in + " \\(destination, from 127\\.0\\.0\\.1:(\\d+)\\): COMPLETED", detail));
        Matcher progress = Pattern.compile("Progress   \\[#{40}\\] 100\\.0%  \\((\\d+) of (\\d+) pages\\)").matcher(detail);
        assertTrue(progress.find(), detail);
        assertEquals(progress.group(2), progress.group(1), "every page present: " + detail);
        assertTrue(Long.parseLong(progress.group(2)) > PAGES, "pc.ram and QEMU's ROM blocks: " + detail);
        long requests = Long.parseLong(group("\\nRequests   (\\d+) sent", detail));
        assertTrue(requests > 0, "the workload's faults became page requests:\n" + detail);
        assertEquals(qemuRequests, requests, "Karaf's Requests = QEMU's postcopy-requests\n" + detail);
        long faultRequests = Long.parseLong(group("\\nFaults     \\d+ \\((\\d+) requested, \\d+ de-duplicated\\)", detail));
        assertEquals(requests, faultRequests, "the fault service's requests = the migration's\n" + detail);
        Matcher preempt = PREEMPT.matcher(detail);
        assertTrue(preempt.find(), "a postcopy-preempt channel:\n" + detail);
        int channelPort = Integer.parseInt(preempt.group(1));
        long channelPages = Long.parseLong(preempt.group(2));
        long channelZeroPages = Long.parseLong(preempt.group(3));
        assertNotEquals(mainPeerPort, channelPort, "the channel is QEMU's second connection:\n" + detail);
        assertTrue(channelPages > 0, "requested pages travelled on the preempt channel:\n" + detail);
        assertFalse(detail.contains("\nMissing ") || detail.contains("\nFailure "), detail);

        // postcopy:digest pc.ram FILE, compared with the source's pc.ram file page for page
        Path digestFile = karaf.files().resolve("pc.ram.sha256");
        String d = karaf.client("postcopy:digest pc.ram " + digestFile);
        assertTrue(d.contains("Wrote " + PAGES + " page digests (" + PAGES * PageDigest.HASH + " bytes) of block pc.ram to "
                + digestFile), d);
        byte[] actual = Files.readAllBytes(digestFile);
        PageDigest.Comparison cmp = PageDigest.compare("pc.ram (QEMU source file vs postcopy:digest)", expected, actual);
        System.out.println(cmp);
        assertEquals(PAGES, cmp.pagesCompared(), cmp.toString());
        assertTrue(cmp.equal(), cmp.toString());
        assertArrayEquals(expected, actual);
        // not a trivial equality: the guest's blob is in there, page by page
        byte[] blob = QemuGuests.blobBytes(QemuToQemuPostcopyIT.BLOB_SEED, QemuToQemuPostcopyIT.BLOB_BYTES);
        long first = QemuGuests.BLOB_ADDRESS / PageDigest.PAGE;
        int bad = 0;
        for (int i = 0; i < QemuToQemuPostcopyIT.BLOB_BYTES / PageDigest.PAGE; i++) {
            byte[] h = PageDigest.ofPage(Arrays.copyOfRange(blob, i * PageDigest.PAGE, (i + 1) * PageDigest.PAGE));
            int o = (int) ((first + i) * PageDigest.HASH);
            if (!Arrays.equals(h, 0, PageDigest.HASH, actual, o, o + PageDigest.HASH)) bad++;
        }
        assertEquals(0, bad, "blob pages differing in Karaf's pc.ram");

        System.out.printf("QEMU -> Karaf %s: completed after %d ms, %d requests (QEMU = Karaf), preempt channel %d pages"
                        + " + %d zero pages, %d pages of pc.ram identical; test body %.1f s%n", in, migrationMillis, requests,
                channelPages, channelZeroPages, PAGES, (System.nanoTime() - t0) / 1e9);
        passed = true;
    }

    /**
     * Issue 12 through the shell: QEMU 7.2 (postcopy-preempt, postcopy throttled to 8 MiB/s so that it lasts) into
     * Karaf; {@code postcopy:pause in-N} on the destination cuts both connections; QEMU goes postcopy-paused;
     * {@code postcopy:recover in-N PORT} and QEMU's {@code migrate} with {@code "resume": true}; QEMU completes, and
     * {@code postcopy:digest} of pc.ram equals the source's RAM file page for page.
     */
    @Test
    @org.junit.jupiter.api.Order(2)
    void qemuResumesIntoKarafAfterPostcopyPauseAndRecover() throws Exception {
        int port = KarafInstance.freePort(TAKEN);
        String l = karaf.client("postcopy:listen --qemu-preempt --prefix rec/ " + port);
        assertTrue(l.contains("Listening on 127.0.0.1:" + port), l);
        QemuGuests.Guest guest = QemuGuests.firmware(QemuToQemuPostcopyIT.CACHE, QemuToQemuPostcopyIT.BLOB_SEED,
                QemuToQemuPostcopyIT.BLOB_BYTES);
        try (QemuProcess src = QemuProcess.start(new QemuProcess.Config("karaf-rec-src", run.resolve("qemu-rec-src")).ram(RAM)
                .args(guest.args()))) {
            Qmp q = src.qmp();
            Map<String, Boolean> caps = new LinkedHashMap<>();
            caps.put("postcopy-ram", true);
            caps.put("return-path", true);
            caps.put("postcopy-preempt", true);
            q.migrateSetCapabilities(caps);
            Map<String, Object> params = new LinkedHashMap<>();
            params.put("max-bandwidth", PostcopyMigration.UNLIMITED);
            params.put("max-postcopy-bandwidth", 8L << 20);
            q.migrateSetParameters(params);
            q.migrate("tcp:127.0.0.1:" + port);
            q.migrateStartPostcopy();
            QemuRecoveryIT.awaitQemu(q, "postcopy-active", Duration.ofSeconds(30));
            String in = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            Pattern row = Pattern.compile("\\n(in-\\d+) +\\| in  \\| 127\\.0\\.0\\.1:\\d+ +\\| POSTCOPY ");
            while (in == null && System.nanoTime() < deadline) {
                Matcher m = row.matcher(karaf.client("postcopy:status"));
                if (m.find()) in = m.group(1);
                else Thread.sleep(200);
            }
            assertTrue(in != null, "an incoming migration in POSTCOPY");
            Thread.sleep(500);

            String paused = karaf.client("postcopy:pause " + in);
            System.out.println("karaf@root()> postcopy:pause " + in + "\n" + paused);
            assertTrue(paused.contains("Migration " + in + ": POSTCOPY_PAUSED (its source is QEMU: postcopy:recover " + in + " PORT"), paused);
            QemuRecoveryIT.awaitQemu(q, "postcopy-paused", Duration.ofSeconds(20));
            String st = karaf.client("postcopy:status " + in);
            System.out.println("karaf@root()> postcopy:status " + in + "\n" + st);
            assertTrue(st.contains("POSTCOPY_PAUSED") && st.contains("Why        paused on the destination (pause); waiting for the"
                    + " source to resume (QEMU: recover here,"), st);

            int recoverPort = KarafInstance.freePort(TAKEN);
            String r = karaf.client("postcopy:recover " + in + " " + recoverPort);
            System.out.println("karaf@root()> postcopy:recover " + in + " " + recoverPort + "\n" + r);
            assertTrue(r.contains("Migration " + in + " waits on 127.0.0.1:" + recoverPort + " for its source to resume it"), r);
            assertTrue(r.contains("\"uri\": \"tcp:127.0.0.1:" + recoverPort + "\", \"resume\": true"), r);
            q.migrateSetParameters(Map.of("max-postcopy-bandwidth", 0L));
            Map<String, Object> resume = new LinkedHashMap<>();
            resume.put("uri", "tcp:127.0.0.1:" + recoverPort);
            resume.put("resume", true);
            q.execute("migrate", resume);
            QemuRecoveryIT.awaitQemu(q, "completed", MIGRATION_TIMEOUT);
            byte[] expected = PageDigest.ofFile(src.ramFile(), 0, RAM);

            String detail = "";
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < deadline) {
                detail = karaf.client("postcopy:status " + in);
                if (detail.contains("): COMPLETED")) break;
                Thread.sleep(200);
            }
            System.out.println("karaf@root()> postcopy:status " + in + "\n" + detail);
            assertTrue(detail.contains("): COMPLETED"), detail);
            assertTrue(PREEMPT.matcher(detail).find(), "the preempt channel, opened again on resume:\n" + detail);
            Path digestFile = karaf.files().resolve("rec-pc.ram.sha256");
            karaf.client("postcopy:digest rec/pc.ram " + digestFile);
            byte[] actual = Files.readAllBytes(digestFile);
            PageDigest.Comparison cmp = PageDigest.compare("rec/pc.ram (QEMU source file vs postcopy:digest)", expected, actual);
            System.out.println(cmp);
            assertTrue(cmp.equal(), cmp.toString());
        } finally {
            karaf.client("postcopy:cancel listen-" + port);
        }
    }

    private static String group(String regex, String text) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertTrue(m.find(), "no match for " + regex + " in:\n" + text);
        return m.group(1);
    }
}
