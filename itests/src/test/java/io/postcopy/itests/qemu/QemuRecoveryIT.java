package io.postcopy.itests.qemu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.TlsOptions;
import io.postcopy.testkit.Await;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.condition.EnabledIf;

/**
 * Issue 12, postcopy recovery with QEMU 7.2 as the source: an unmodified QEMU migrates a firmware guest into our
 * destination in pure postcopy, throttled (max-postcopy-bandwidth) so that postcopy lasts; once both sides are
 * postcopy-active and our guest runs, the connection is cut (QEMU's {@code migrate-pause}, or our own pause on the
 * destination); QEMU reaches {@code postcopy-paused} and ours POSTCOPY_PAUSED; a stranger on the recovery port is
 * refused; {@link IncomingMigration#recover} (QEMU's {@code migrate-recover}) and QEMU {@code migrate} with
 * {@code "resume": true}; QEMU completes and every page of the blob is equal in our pc.ram. With and without
 * postcopy-preempt (QEMU opens its preempt socket again on resume), and over TLS.
 */
@EnabledIf(value = "io.postcopy.itests.qemu.QemuToQemuPostcopyIT#qemuUsable",
        disabledReason = "QEMU, root or /dev/shm missing: see the SKIPPING banner / target/qemu-runs/SKIPPED.txt")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class QemuRecoveryIT {
    static final Path RUNS = QemuToQemuPostcopyIT.RUNS.resolve("recovery");

    /** Which QEMU is the source: the system's 7.2 here; the QEMU 10.0 subclass overrides it. */
    QemuProcess.Qemu qemu() {
        return QemuProcess.Qemu.SYSTEM;
    }

    /** This class's work directory (one per QEMU version). */
    Path runs() {
        return qemu().major() == 7 ? RUNS : RUNS.resolveSibling(RUNS.getFileName() + "-qemu" + qemu().major());
    }
    static final long RAM = QemuToQemuPostcopyIT.RAM;
    /** Slow enough that postcopy lasts well past the cut (256 MiB at 8 MiB/s), fast enough for the first pages. */
    static final long THROTTLE = 8L << 20;
    private final List<String> results = new ArrayList<>();

    @BeforeAll
    void credentials() throws Exception {
        if (Files.exists(runs())) {
            try (var w = Files.walk(runs())) {
                w.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        Files.createDirectories(runs());
        TlsCreds.make(runs().resolve("creds"));
    }

    @AfterAll
    void report() {
        System.out.println("\n===== " + qemu().label() + " (" + qemu().version() + ") -> our destination: postcopy recovery =====");
        results.forEach(System.out::println);
    }

    @Test
    void qemuPausesAndResumes() throws Exception {
        recover(false, false, false);
    }

    @Test
    void qemuPausesAndResumesWithPostcopyPreempt() throws Exception {
        recover(true, false, false);
    }

    @Test
    void ourDestinationPausesAndQemuResumes() throws Exception {
        recover(false, true, false);
    }

    @Test
    void qemuPausesAndResumesOverTlsWithPostcopyPreempt() throws Exception {
        recover(true, false, true);
    }

    private void recover(boolean preempt, boolean ourPause, boolean tls) throws Exception {
        String label = "recover" + (preempt ? "-preempt" : "") + (ourPause ? "-ourpause" : "") + (tls ? "-tls" : "");
        QemuGuests.Guest guest = QemuGuests.firmware(QemuToQemuPostcopyIT.CACHE, QemuToQemuPostcopyIT.BLOB_SEED,
                QemuToQemuPostcopyIT.BLOB_BYTES);
        TlsOptions tlsOptions = tls ? TlsOptions.of(runs().resolve("creds/server")) : null;
        try (QemuProcess src = QemuProcess.start(new QemuProcess.Config(label + "-src", runs().resolve(label + "-src"))
                .ram(RAM).qemu(qemu()).args(guest.args()));
             JavaDestination dst = new JavaDestination(label + "-dst", 1, 1000, tlsOptions)) {
            Thread.sleep(500); // firmware up and idle
            Qmp q = src.qmp();
            Map<String, Object> params = new LinkedHashMap<>();
            params.put("max-bandwidth", PostcopyMigration.UNLIMITED);
            params.put("max-postcopy-bandwidth", THROTTLE);
            if (tls) {
                Map<String, Object> creds = new LinkedHashMap<>();
                creds.put("qom-type", "tls-creds-x509");
                creds.put("id", "tls0");
                creds.put("endpoint", "client");
                creds.put("dir", runs().resolve("creds/client").toAbsolutePath().toString());
                creds.put("verify-peer", true);
                q.execute("object-add", creds);
                params.put("tls-creds", "tls0");
                params.put("tls-hostname", "localhost");
            }
            Map<String, Boolean> caps = new LinkedHashMap<>(PostcopyMigration.CAPABILITIES);
            if (preempt) caps.put("postcopy-preempt", true);
            q.migrateSetCapabilities(caps);
            q.migrateSetParameters(params);
            long t0 = System.nanoTime();
            q.migrate("tcp:127.0.0.1:" + dst.port());
            q.migrateStartPostcopy();
            IncomingMigration m = dst.awaitMigration(Duration.ofSeconds(20));
            // both postcopy-active, our guest running, pages arriving
            awaitQemu(q, "postcopy-active", Duration.ofSeconds(30));
            Await.until("ours in POSTCOPY with 2000 pages (or ended)", Duration.ofSeconds(30), Duration.ofMillis(10),
                    () -> m.state() == MigrationState.POSTCOPY && m.progress().pages() >= 2000 || m.state().isFinal());
            assertEquals(MigrationState.POSTCOPY, m.state(), m.failure().orElse(""));
            Thread.sleep(300);
            long pagesAtCut = m.progress().pages();

            long cut = System.nanoTime();
            if (ourPause) m.pause();
            else q.execute("migrate-pause", Map.of());
            awaitState(m, MigrationState.POSTCOPY_PAUSED, Duration.ofSeconds(20));
            long ourPaused = System.nanoTime();
            awaitQemu(q, "postcopy-paused", Duration.ofSeconds(20));
            long qemuPaused = System.nanoTime();
            assertTrue(m.reason().orElse("").contains("waiting for the source to resume"), m.reason().toString());
            assertTrue(m.missing().isEmpty() || m.state() == MigrationState.POSTCOPY_PAUSED);

            InetSocketAddress at = m.recover(null);
            assertEquals("127.0.0.1", at.getAddress().getHostAddress());
            if (!tls) {
                // a stranger on the recovery port is refused: not QEMU's RECV_BITMAP; the port keeps waiting
                try (SocketChannel s = SocketChannel.open(at)) {
                    s.write(ByteBuffer.wrap("GET / HTTP/1.0\r\n\r\n".getBytes()));
                    ByteBuffer b = ByteBuffer.allocate(16);
                    s.socket().setSoTimeout(5000);
                    assertEquals(-1, s.read(b), "the stranger's connection is closed");
                } catch (IOException reset) {
                    // closed with a reset: refused too
                }
                assertEquals(MigrationState.POSTCOPY_PAUSED, m.state());
            }
            q.migrateSetParameters(Map.of("max-postcopy-bandwidth", 0L));
            long resume = System.nanoTime();
            Map<String, Object> resumeArgs = new LinkedHashMap<>();
            resumeArgs.put("uri", "tcp:127.0.0.1:" + at.getPort());
            resumeArgs.put("resume", true);
            q.execute("migrate", resumeArgs);
            Await.until("ours in POSTCOPY again (or ended)", Duration.ofSeconds(30), Duration.ofMillis(1),
                    () -> m.state() == MigrationState.POSTCOPY || m.state().isFinal());
            long acked = System.nanoTime();
            String status = awaitQemu(q, "completed", QemuToQemuPostcopyIT.MIGRATION_TIMEOUT);
            assertEquals("completed", status, label + ": QEMU " + q.queryMigrate() + "; ours " + m.state() + " " + m.failure().orElse(""));
            assertEquals(MigrationState.COMPLETED, dst.awaitFinal(Duration.ofSeconds(30)), m.failure().orElse(""));
            assertEquals(preempt, dst.postcopyChannel().isPresent(), "the preempt channel, opened again: " + dst.postcopyChannel());

            byte[] blob = QemuGuests.blobBytes(QemuToQemuPostcopyIT.BLOB_SEED, QemuToQemuPostcopyIT.BLOB_BYTES);
            byte[] ours = dst.ramDigest("pc.ram");
            long first = QemuGuests.BLOB_ADDRESS / PageDigest.PAGE;
            int bad = 0;
            for (int i = 0; i < QemuToQemuPostcopyIT.BLOB_BYTES / PageDigest.PAGE; i++) {
                byte[] h = PageDigest.ofPage(Arrays.copyOfRange(blob, i * PageDigest.PAGE, (i + 1) * PageDigest.PAGE));
                int o = (int) ((first + i) * PageDigest.HASH);
                if (!Arrays.equals(h, 0, 32, ours, o, o + 32)) bad++;
            }
            assertEquals(0, bad, label + ": blob pages differing in our pc.ram");
            String line = String.format("  %s: cut after %d pages; ours paused in %.1f ms, QEMU postcopy-paused in %.1f ms; "
                            + "resume to RESUME_ACK %.1f ms; QEMU completed %d ms after the start; %d requests; %s", label,
                    pagesAtCut, (ourPaused - cut) / 1e6, (qemuPaused - cut) / 1e6, (acked - resume) / 1e6,
                    (System.nanoTime() - t0) / 1_000_000, dst.requests(),
                    dst.postcopyChannel().map(c -> "preempt channel " + c).orElse("no preempt channel"));
            results.add(line);
            System.out.println(line);
        }
    }

    static void awaitState(IncomingMigration m, MigrationState s, Duration timeout) {
        Await.until(m.id() + " in " + s + " (or ended)", timeout, Duration.ofMillis(2), () -> m.state() == s || m.state().isFinal());
        assertEquals(s, m.state(), m.reason().orElse("") + " " + m.failure().orElse(""));
    }

    /** Polls QEMU until its migration status is {@code want} (or final); returns the last status. */
    static String awaitQemu(Qmp q, String want, Duration timeout) throws IOException {
        String status = Await.until("QEMU's migration " + want + " (or ended)", timeout, Duration.ofMillis(5),
                () -> String.valueOf(q.queryMigrate().get("status")),
                st -> st.equals(want) || st.equals("failed") || st.equals("cancelled") || st.equals("completed"));
        assertEquals(want, status, "QEMU: " + q.queryMigrate());
        return status;
    }
}
