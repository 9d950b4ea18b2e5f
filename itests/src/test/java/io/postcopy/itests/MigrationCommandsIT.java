package io.postcopy.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import io.postcopy.testkit.Await;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.inject.Inject;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.api.console.SessionFactory;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * The migration commands of the shell (listen, migrate, start-postcopy, status, cancel, demo) run through
 * Karaf's {@link SessionFactory} with their output checked, the JMX MBeans of the migration bundle, and a
 * malformed stream sent to a listener from a raw socket. Only shell text, JMX and sockets are used here, so
 * the test does not depend on the bundles' classes (only on the test kit's Await).
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class MigrationCommandsIT {
    /** The subject a shell user with the admin role has (Karaf's JAAS principals). */
    private static final javax.security.auth.Subject ADMIN = new javax.security.auth.Subject(true,
            java.util.Set.of(new org.apache.karaf.jaas.boot.principal.UserPrincipal("it-admin"),
                    new org.apache.karaf.jaas.boot.principal.RolePrincipal("admin"),
                    new org.apache.karaf.jaas.boot.principal.RolePrincipal("viewer")),
            java.util.Set.of(), java.util.Set.of());


    @Inject
    SessionFactory sessions;

    @Inject
    org.osgi.framework.BundleContext bundleContext;

    @Configuration
    public Option[] config() {
        return PostcopyKaraf.withTestKit();
    }

    record Result(String out, Throwable failure) {}

    private Result run(String commandLine) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try (Session session = sessions.create(System.in, o, e)) {
            // as an administrator would: Karaf's command ACLs (etc/org.apache.karaf.command.acl.postcopy.cfg) hide the
            // postcopy commands from a session without the admin role
            Future<Object> f = executor.submit(() -> javax.security.auth.Subject.doAs(ADMIN,
                    (java.security.PrivilegedExceptionAction<Object>) () -> session.execute(commandLine)));
            Throwable failure = null;
            try {
                f.get(300, TimeUnit.SECONDS);
            } catch (ExecutionException x) {
                failure = x.getCause() instanceof java.security.PrivilegedActionException pa ? pa.getCause() : x.getCause();
            }
            o.flush();
            return new Result(out.toString(StandardCharsets.UTF_8), failure);
        } finally {
            executor.shutdownNow();
        }
    }

    private String ok(String commandLine) throws Exception {
        Result r = run(commandLine);
        if (r.failure() != null) throw new AssertionError(commandLine + " failed: " + r.failure(), r.failure());
        System.out.println("karaf@root()> " + commandLine + "\n" + r.out());
        for (String line : r.out().split("\n"))
            assertTrue(commandLine + ": line wider than 100 columns: " + line, line.length() <= 100);
        return r.out();
    }

    private String error(String commandLine) throws Exception {
        Result r = run(commandLine);
        assertNotNull(commandLine + " should fail, printed: " + r.out(), r.failure());
        assertEquals("CommandException", r.failure().getClass().getSimpleName());
        String m = r.failure().getMessage();
        assertFalse(m, m.contains("\n"));
        System.out.println("karaf@root()> " + commandLine + "\nError executing command: " + m);
        return m;
    }

    private static String group(String regex, String text) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertTrue("no match for " + regex + " in:\n" + text, m.find());
        return m.group(1);
    }

    /** The first group of {@code regex}'s first match in {@code text}, or null. */
    private static String find(String regex, String text) {
        Matcher m = Pattern.compile(regex).matcher(text);
        return m.find() ? m.group(1) : null;
    }

    private static Object attr(String name, String attribute) throws Exception {
        MBeanServer s = ManagementFactory.getPlatformMBeanServer();
        return s.getAttribute(new ObjectName(name), attribute);
    }

    /** Waits up to 5 s for the JMX publisher (it registers a migration's MBean at its first event, on another thread). */
    private static void awaitMBean(String name) {
        MBeanServer s = ManagementFactory.getPlatformMBeanServer();
        Await.until(name + " registered", Duration.ofSeconds(5), Duration.ofMillis(100), () -> s.isRegistered(new ObjectName(name)));
    }

    @Test
    public void demoVerifiesEveryPageAndFaults() throws Exception {
        String out = ok("postcopy:demo 256M");
        assertTrue(out, out.contains("Pages verified  65536, 0 mismatched"));
        // Whether the reader faults at all depends on the race between it and the bulk stream, which re-sends the
        // discarded hot set first (a quiet host once finished postcopy in 30 ms): what holds is that every fault was
        // requested or found its page arriving, and that the destination's requests are the faults it requested.
        java.util.regex.Matcher f = java.util.regex.Pattern.compile("\\n  Faults +(\\d+) \\((\\d+) requested, (\\d+) de-duplicated\\)").matcher(out);
        assertTrue(out, f.find());
        long faults = Long.parseLong(f.group(1)), requested = Long.parseLong(f.group(2)), dedup = Long.parseLong(f.group(3));
        assertEquals(out, faults, requested + dedup);
        assertTrue(out, out.contains("\n  Requests        " + requested + " sent by the destination"));
        assertTrue(out, out.contains("Result          COMPLETED"));
        assertTrue(out, out.matches("(?s).*\\n  Downtime        [0-9.]+ (ms|us) \\(the source's guest paused until the.*"));
        assertTrue(out, out.matches("(?s).*Fault latency   p50 .*, p99 .*, max .*"));
        assertTrue(out, out.contains("Removed blocks demo-ram and demo-dst/demo-ram"));
        String blocks = ok("postcopy:blocks");
        assertFalse(blocks, blocks.contains("demo-"));
    }

    @Test
    public void listenMigrateStartPostcopyStatusAndMBeans() throws Exception {
        String l = ok("postcopy:listen --prefix it-dst/ --workload uniform 0");
        String port = group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l);
        assertTrue(l, l.contains("block prefix \"it-dst/\", uniform reader at RUN"));
        ok("postcopy:block-create it-src 256M");
        ok("postcopy:workload fill it-src");
        String m = ok("postcopy:migrate --hybrid --workload uniform --blocks it-src 127.0.0.1:" + port);
        String out = group("Started migration (out-\\d+) to ", m);
        assertTrue(m, m.contains("1 block, 256 MiB, hybrid (start-postcopy switches)"));
        String sp = ok("postcopy:start-postcopy " + out);
        assertTrue(sp, sp.startsWith("Migration " + out + ": switching to postcopy after the current precopy chunk"));

        String watch = ok("postcopy:status --watch --interval 100ms " + out);
        // both sides ours: each names the other's id for the same migration (issue 17)
        String peerIn = group("Migration  " + out + " \\(source, to 127\\.0\\.0\\.1:" + port + ", peer (in-\\d+)\\): COMPLETED", watch);
        assertTrue(watch, watch.contains("Progress   [########################################] 100.0%"));
        assertTrue(watch, watch.matches("(?s).*Requests   \\d+ received, \\d+ pages? served out of order.*"));
        assertTrue(watch, watch.matches("(?s).*\\nDowntime   [0-9.]+ (ms|us) \\(guest paused on the source until the destination ran its own\\).*"));

        String table = ok("postcopy:status");
        // the newest incoming migration is this test's (earlier tests' are listed too)
        String in = null;
        for (Matcher mm = Pattern.compile("\\n(in-\\d+) +\\| in  \\| 127\\.0\\.0\\.1:\\d+ +\\| COMPLETED").matcher(table); mm.find(); )
            if (in == null || Integer.parseInt(mm.group(1).substring(3)) > Integer.parseInt(in.substring(3))) in = mm.group(1);
        assertNotNull(table, in);
        assertTrue(table, table.matches("(?s).*\\n" + out + " +\\| out \\| 127\\.0\\.0\\.1:" + port + " +\\| COMPLETED +\\| +100\\.0% .*"));
        assertTrue(table, table.contains("Listeners: listen-" + port + " on 127.0.0.1:" + port));
        String detail = ok("postcopy:status " + in);
        assertTrue(detail, detail.contains("(destination, from 127.0.0.1:"));
        assertEquals(peerIn, in);
        assertTrue(detail, detail.matches("(?s)Migration  " + in + " \\(destination, from 127\\.0\\.0\\.1:\\d+, peer " + out + "\\): COMPLETED\n.*"));
        assertTrue(detail, detail.matches("(?s).*\\nFaults     \\d+ \\(\\d+ requested, \\d+ de-duplicated\\).*"));
        assertTrue(detail, detail.matches("(?s).*\\nLatency    p50 .*, p99 .*, max .* \\(fault to placement, \\d+ faults?\\).*"));
        assertTrue(detail, detail.matches("(?s).*\\nDiscards   \\d+ ranges?.*"));
        assertTrue(detail, detail.contains("Devices    0 loaded, 0 opaque"));

        // MBeans after the migration
        String outName = "io.postcopy:type=Migration,id=" + out, inName = "io.postcopy:type=Migration,id=" + in;
        awaitMBean(outName);
        awaitMBean(inName);
        assertEquals("COMPLETED", attr(outName, "State"));
        assertEquals("outgoing", attr(outName, "Direction"));
        assertTrue((Long) attr(outName, "Bytes") > 256L << 20);
        assertEquals(0L, attr(outName, "RemainingPages"));
        assertEquals(65536L, attr(outName, "TotalPages"));
        assertEquals(100.0, (Double) attr(outName, "PercentDone"), 0.0);
        long downtime = (Long) attr(outName, "DowntimeMicros");
        assertTrue("downtime " + downtime + " us", downtime > 0 && downtime < 60_000_000L);
        assertEquals(-1L, attr(inName, "DowntimeMicros"));
        assertEquals("COMPLETED", attr(inName, "State"));
        assertEquals("", attr(inName, "Failure"));
        long faults = (Long) attr(inName, "Faults");
        assertTrue("faults = requests + de-duplicated", faults >= (Long) attr(inName, "Requests"));
        assertTrue((Double) attr(inName, "LatencyP99Micros") >= (Double) attr(inName, "LatencyP50Micros"));
        assertTrue((Double) attr(inName, "LatencyMaxMicros") >= (Double) attr(inName, "LatencyP99Micros"));
        assertTrue("throughput " + attr(inName, "Throughput") + ", bytes " + attr(inName, "Bytes") + ", pages " + attr(inName, "Pages"), (Double) attr(inName, "Throughput") > 0);
        awaitMBean("io.postcopy:type=FaultService");
        assertEquals(0, attr("io.postcopy:type=FaultService", "LiveIncoming"));
        String[] backends = (String[]) attr("io.postcopy:type=FaultService", "Backends");
        assertTrue(String.join("; ", backends), String.join("; ", backends).contains("anon (ranking 0)"));

        String cl = ok("postcopy:cancel listen-" + port);
        assertTrue(cl, cl.startsWith("Closed listener listen-" + port + " (1 migration accepted"));
        ok("postcopy:workload stop it-src");
        ok("postcopy:workload stop it-dst/it-src");
        ok("postcopy:block-remove it-dst/it-src");
        ok("postcopy:block-remove it-src");
    }

    @Test
    public void cancelAMigrationStuckOnASilentPeerWithItsMBeanLive() throws Exception {
        try (ServerSocket silent = new ServerSocket()) {
            silent.bind(new InetSocketAddress("127.0.0.1", 0));
            ok("postcopy:block-create it-stuck 64M");
            ok("postcopy:workload fill it-stuck");
            String m = ok("postcopy:migrate --precopy-only --blocks it-stuck 127.0.0.1:" + silent.getLocalPort());
            String id = group("Started migration (out-\\d+) to ", m);
            try (Socket peer = silent.accept()) { // accepts, never reads: the source blocks on its send buffer
                String name = "io.postcopy:type=Migration,id=" + id;
                awaitMBean(name);
                Thread.sleep(500);
                String state = (String) attr(name, "State");
                assertTrue(state, state.equals("SETUP") || state.equals("PRECOPY"));
                assertTrue((Long) attr(name, "RemainingPages") > 0);
                String c = ok("postcopy:cancel " + id);
                assertTrue(c, c.startsWith("Cancelled migration " + id + " (was " + state + ", now CANCELLED)"));
                assertEquals("CANCELLED", attr(name, "State"));
                assertTrue(error("postcopy:cancel " + id).endsWith("migration " + id + " has ended already: CANCELLED"));
                assertTrue(error("postcopy:start-postcopy " + id).contains("is not hybrid (PRECOPY_ONLY)"));
            }
        } finally {
            ok("postcopy:block-remove it-stuck");
        }
        assertEquals("postcopy:cancel: no migration with id \"out-999\" (postcopy:status lists them)",
                error("postcopy:cancel out-999"));
        assertTrue(error("postcopy:status nope").contains("no migration with id \"nope\""));
        assertTrue(error("postcopy:migrate --precopy-only --hybrid 127.0.0.1:1").endsWith(
                "--postcopy-now, --postcopy-after, --hybrid and --precopy-only exclude each other: give at most one"));
        assertTrue(error("postcopy:migrate --postcopy-now --postcopy-after 2s --blocks x 127.0.0.1:1").endsWith(
                "exclude each other: give at most one"));
        assertTrue(error("postcopy:migrate localhost").endsWith("\"localhost\" is not HOST:PORT (like 127.0.0.1:4444)"));
        assertTrue(error("postcopy:migrate --max-bandwidth 0 127.0.0.1:1").endsWith("--max-bandwidth \"0\" is zero; it must be positive"));
        assertTrue(error("postcopy:listen 70000").endsWith("port 70000 is not in 0..65535"));
    }

    /** The crash of issue 12: block-remove during a migration. Refused, naming it; --force cancels it first. */
    @Test
    public void blockRemoveOfABlockInUseIsRefusedAndForceCancelsTheMigrationFirst() throws Exception {
        try (ServerSocket silent = new ServerSocket()) {
            silent.bind(new InetSocketAddress("127.0.0.1", 0));
            ok("postcopy:block-create it-busy 64M");
            ok("postcopy:workload fill it-busy");
            String m = ok("postcopy:migrate --precopy-only --blocks it-busy 127.0.0.1:" + silent.getLocalPort());
            String id = group("Started migration (out-\\d+) to ", m);
            try (Socket peer = silent.accept()) { // never reads: the sender stays busy on the block
                String name = "io.postcopy:type=Migration,id=" + id;
                awaitMBean(name);
                String refused = error("postcopy:block-remove it-busy");
                assertTrue(refused, refused.matches("postcopy:block-remove: block \"it-busy\" is in use by migration "
                        + id + " \\((SETUP|PRECOPY)\\); end it first \\(postcopy:cancel\\), or remove with --force, which cancels it"));
                assertTrue(ok("postcopy:blocks").contains("it-busy"));
                String removed = ok("postcopy:block-remove --force it-busy");
                assertTrue(removed, removed.matches("(?s)Removed block it-busy \\(64M\\); first let go: migration " + id
                        + " \\((SETUP|PRECOPY)\\)\\s*"));
                assertEquals("CANCELLED", attr(name, "State"));
                assertFalse(ok("postcopy:blocks").contains("it-busy"));
            }
        }
    }

    /**
     * Issue 13 through the shell: credentials from the distribution's bin/postcopy-tls-creds, a TLS listener with an
     * authorization list and a TLS migration into it; a listener off loopback needs TLS or --insecure, and status
     * says which.
     */
    @Test
    public void aMigrationOverTlsAndListenersOffLoopbackNeedTlsOrInsecure() throws Exception {
        java.nio.file.Path creds = java.nio.file.Files.createTempDirectory("it-tls");
        Process p = new ProcessBuilder("bash", System.getProperty("karaf.home") + "/bin/postcopy-tls-creds", creds.toString())
                .redirectErrorStream(true).start();
        String made = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(made, 0, p.waitFor());
        String l = ok("postcopy:listen --tls-creds " + creds.resolve("server") + " --tls-authz CN=source,O=postcopy --prefix it-tlsd/ 0");
        int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));
        assertTrue(l, l.contains("TLS: sources must present a certificate from the CA in\n  " + creds.resolve("server/ca-cert.pem")
                + "\n  with subject CN=source,O=postcopy"));
        clientCreds = creds.resolve("client");
        // BoringSSL's native fragment resolved in Karaf: records are not left to the JDK's 3-4x slower AES-GCM
        String check = ok("postcopy:check");
        assertTrue(check, check.contains("TLS records: BoringSSL (netty-tcnative)"));
        try {
            overTls(port);
        } finally {
            ok("postcopy:cancel listen-" + port);
        }
    }

    private java.nio.file.Path clientCreds;

    private void overTls(int port) throws Exception {
        ok("postcopy:block-create it-tls 32M");
        ok("postcopy:workload fill it-tls");
        String m = ok("postcopy:migrate --tls-creds " + clientCreds + " --blocks it-tls 127.0.0.1:" + port);
        String out = group("Started migration (out-\\d+) to ", m);
        String watch = ok("postcopy:status --watch --interval 100ms " + out);
        assertTrue(watch, watch.contains("): COMPLETED"));
        String verify = ok("postcopy:workload verify it-tlsd/it-tls");
        assertTrue(verify, verify.startsWith("OK block it-tlsd/it-tls: 8192 pages, 0 zero, 8192 filled, 0 written, 0 mismatched"));
        String status = ok("postcopy:status");
        assertTrue(status, status.contains("listen-" + port + " on 127.0.0.1:" + port + " (1 accepted, TLS)"));

        // a plain source is refused by the TLS listener before any block is made
        ok("postcopy:block-create it-plain 4M");
        // (the command fails at once, with the reason and a non-zero exit)
        String plain = error("postcopy:migrate --blocks it-plain 127.0.0.1:" + port);
        assertTrue(plain, plain.matches("postcopy:migrate: migration out-\\d+ to 127\\.0\\.0\\.1:" + port + " FAILED: .*"));
        assertFalse(ok("postcopy:blocks").contains("it-tlsd/it-plain"));

        assertTrue(error("postcopy:listen --bind 0.0.0.0 0").contains("without TLS"));
        String open = ok("postcopy:listen --bind 0.0.0.0 --insecure 0");
        int openPort = Integer.parseInt(group("Listening on \\S+:(\\d+) as listen-", open));
        try {
            String st = ok("postcopy:status");
            assertTrue(st, st.matches("(?s).*listen-" + openPort + " on 0\\.0\\.0\\.0:" + openPort + "\\s+\\(0\\s+accepted,\\s+INSECURE: no TLS off\\s+loopback\\).*"));
        } finally {
            ok("postcopy:cancel listen-" + openPort);
        }
        ok("postcopy:block-remove it-tlsd/it-tls");
        ok("postcopy:block-remove it-tls");
        ok("postcopy:block-remove it-plain");
    }

    /**
     * Issue 17: migrate fails fast with the reason (non-zero exit), and --wait returns when it has ended; the blocks
     * must be named and the default mode is hybrid with a bound.
     */
    @Test
    public void migrateFailsFastAndWaitReturnsAtTheEnd() throws Exception {
        ok("postcopy:block-create it-ff 8M");
        try {
            assertEquals("postcopy:migrate: name the blocks to migrate: --blocks NAME[,NAME...] or --all-blocks "
                    + "(postcopy:blocks lists them)", error("postcopy:migrate 127.0.0.1:1"));
            assertTrue(error("postcopy:migrate --all-blocks --blocks it-ff 127.0.0.1:1").endsWith("--all-blocks excludes --blocks"));
            // --all-blocks is accepted (and fails here only because nothing listens on port 1)
            assertTrue(error("postcopy:migrate --all-blocks 127.0.0.1:1").contains("FAILED: "));
            String refused = error("postcopy:migrate --blocks it-ff 127.0.0.1:1");
            assertTrue(refused, refused.matches("postcopy:migrate: migration out-\\d+ to 127\\.0\\.0\\.1:1 FAILED: .*Connection refused.*"));
            String l = ok("postcopy:listen --prefix it-ffd/ 0");
            int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));
            try {
                String done = ok("postcopy:migrate --wait --blocks it-ff 127.0.0.1:" + port);
                assertTrue(done, done.matches("(?s)Started migration (out-\\d+) to .*\\nMigration out-\\d+ COMPLETED\\n"));
                assertTrue(done, done.contains(", hybrid, postcopy after at most 30s"));
                ok("postcopy:block-remove it-ffd/it-ff");
                String now = ok("postcopy:migrate --wait --postcopy-now --blocks it-ff 127.0.0.1:" + port);
                assertTrue(now, now.contains("1 block, 8 MiB, postcopy\n"));
                // --postcopy-after is an upper bound: an idle guest's precopy converges at its second pass and the
                // migration switches then, long before the minute
                ok("postcopy:block-remove it-ffd/it-ff");
                long t0 = System.nanoTime();
                String bounded = ok("postcopy:migrate --wait --postcopy-after 1m --blocks it-ff 127.0.0.1:" + port);
                double seconds = (System.nanoTime() - t0) / 1e9;
                assertTrue(bounded + " took " + seconds + " s", seconds < 20);
                String detail = ok("postcopy:status " + group("Started migration (out-\\d+) ", bounded));
                assertTrue(detail, detail.contains(", 2 precopy passes, 0 dirty at the last scan"));
            } finally {
                ok("postcopy:cancel listen-" + port);
            }
            ok("postcopy:block-remove it-ffd/it-ff");
        } finally {
            ok("postcopy:block-remove it-ff");
        }
    }

    /**
     * Issue 15: with the postcopy-events feature, a bundle that subscribes to {@code io/postcopy/migration/*} through
     * Event Admin sees each side of a migration from its creation to COMPLETED, in order, with its id, direction, blocks and figures; the same
     * changes arrive as JMX notifications from the migration's MBean.
     */
    @Test
    public void eventAdminAndJmxSeeAFullMigrationsStatesInOrder() throws Exception {
        // as docs/admin-guide.md says: at run time, without refreshing bundles (Event Admin would rewire Karaf's own)
        ok("feature:install -r postcopy-events");
        Await.until("Event Admin running", Duration.ofSeconds(5), Duration.ofMillis(50),
                () -> bundleContext.getServiceReference("org.osgi.service.event.EventAdmin") != null);
        // Event Admin's types only in EventRecorder: this class loads before the feature is installed
        EventRecorder reg = EventRecorder.start(bundleContext, "io/postcopy/migration/*");
        java.util.List<java.util.Map<String, Object>> seen = reg.events;
        java.util.List<javax.management.Notification> notes = new java.util.concurrent.CopyOnWriteArrayList<>();
        ok("postcopy:block-create it-ev 16M");
        try {
            String l = ok("postcopy:listen --prefix it-evd/ 0");
            int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));
            try {
                // paced to ~2 s, so that a JMX listener is on its MBean before it ends
                String started = ok("postcopy:migrate --max-bandwidth 8M --blocks it-ev 127.0.0.1:" + port);
                String out = group("Started migration (out-\\d+)", started);
                String name = "io.postcopy:type=Migration,id=" + out;
                awaitMBean(name);
                ManagementFactory.getPlatformMBeanServer().addNotificationListener(new ObjectName(name),
                        (n, handback) -> notes.add(n), null, null);
                Await.until("COMPLETED as the last event of " + out + ", and an incoming migration's COMPLETED event",
                        Duration.ofSeconds(60), Duration.ofMillis(20), () -> states(seen, out),
                        st -> !st.isEmpty() && st.get(st.size() - 1).equals("COMPLETED")
                                && seen.stream().anyMatch(e -> "COMPLETED".equals(e.get("migration.state")) && "incoming".equals(e.get("migration.direction"))));
                java.util.List<String> outStates = states(seen, out);
                System.out.println("events of " + out + ": " + outStates);
                assertEquals("SETUP", outStates.get(0));
                assertEquals("COMPLETED", outStates.get(outStates.size() - 1));
                assertTrue(outStates.toString(), outStates.size() >= 3);     // SETUP, at least one phase, COMPLETED
                String previous = null;
                for (java.util.Map<String, Object> e : seen) {
                    if (!out.equals(e.get("migration.id"))) continue;
                    assertEquals(String.valueOf(e.get("topic")), previous, e.get("migration.previous"));
                    assertEquals("outgoing", e.get("migration.direction"));
                    assertEquals("[it-ev]", java.util.Arrays.toString((String[]) e.get("migration.blocks")));
                    previous = (String) e.get("migration.state");
                }
                java.util.Map<String, Object> last = seen.stream().filter(e -> out.equals(e.get("migration.id")))
                        .reduce((a, b) -> b).orElseThrow();
                assertEquals(0L, last.get("migration.pages.remaining"));
                assertEquals(4096L, last.get("migration.pages.total"));
                String in = seen.stream().filter(e -> "incoming".equals(e.get("migration.direction")))
                        .map(e -> (String) e.get("migration.id")).findFirst().orElseThrow();
                java.util.List<String> inStates = states(seen, in);
                System.out.println("events of " + in + ": " + inStates);
                assertEquals("SETUP", inStates.get(0));
                assertEquals("COMPLETED", inStates.get(inStates.size() - 1));
                // JMX: from the moment the listener was added, the same states as notifications, ending with COMPLETED
                java.util.List<String> types = Await.until("the COMPLETED notification", Duration.ofSeconds(2), Duration.ofMillis(20),
                        () -> notes.stream().map(javax.management.Notification::getType).toList(),
                        t -> t.contains("io.postcopy.migration.COMPLETED"));
                System.out.println("JMX notifications of " + out + ": " + types);
                assertTrue(types.toString(), outStates.subList(outStates.size() - types.size(), outStates.size())
                        .equals(types.stream().map(t -> t.substring("io.postcopy.migration.".length())).toList()));
            } finally {
                ok("postcopy:cancel listen-" + port);
            }
            ok("postcopy:block-remove it-evd/it-ev");
        } finally {
            reg.unregister();
            ok("postcopy:block-remove it-ev");
        }
    }

    private static java.util.List<String> states(java.util.List<java.util.Map<String, Object>> events, String id) {
        return events.stream().filter(e -> id.equals(e.get("migration.id")))
                .map(e -> (String) e.get("migration.state")).toList();
    }

    /** An Event Admin subscriber; loaded only once Event Admin's package is there. Events as property maps. */
    static final class EventRecorder implements org.osgi.service.event.EventHandler {
        final java.util.List<java.util.Map<String, Object>> events = new java.util.concurrent.CopyOnWriteArrayList<>();
        private org.osgi.framework.ServiceRegistration<?> registration;

        static EventRecorder start(org.osgi.framework.BundleContext context, String topics) {
            EventRecorder r = new EventRecorder();
            java.util.Dictionary<String, Object> p = new java.util.Hashtable<>();
            p.put(org.osgi.service.event.EventConstants.EVENT_TOPIC, topics);
            r.registration = context.registerService(org.osgi.service.event.EventHandler.class.getName(), r, p);
            return r;
        }

        @Override
        public void handleEvent(org.osgi.service.event.Event e) {
            java.util.Map<String, Object> m = new java.util.HashMap<>();
            for (String k : e.getPropertyNames()) m.put(k, e.getProperty(k));
            m.put("topic", e.getTopic());
            events.add(m);
        }

        void unregister() {
            registration.unregister();
        }
    }

    /**
     * Issue 17: migrate --watch shows the progress of the migration it starts (a second client's status --watch
     * came too late for a small one), then its status; its exit status is --wait's.
     */
    @Test
    public void migrateWatchShowsItsMigrationsProgressAndFailsUnlessCompleted() throws Exception {
        String l = ok("postcopy:listen --prefix it-mw/ 0");
        int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));
        try {
            ok("postcopy:block-create it-mw 64M");
            ok("postcopy:workload fill it-mw");
            String w = ok("postcopy:migrate --watch --interval 100ms --max-bandwidth 32M --blocks it-mw 127.0.0.1:" + port);
            String out = group("^Started migration (out-\\d+) to 127\\.0\\.0\\.1:" + port + ": 1 block, 64 MiB, hybrid", w);
            Matcher lines = Pattern.compile("\\n +\\d+\\.\\ds " + out + " +(PRECOPY|POSTCOPY) +\\[[#.]{24}\\] ").matcher(w);
            int n = 0;
            while (lines.find()) n++;
            assertTrue("several progress lines in:\n" + w, n >= 5);
            assertTrue(w, w.matches("(?s).*\nMigration  " + out + " \\(source, to 127\\.0\\.0\\.1:" + port + ", peer in-\\d+\\): COMPLETED\n.*"));
            assertTrue(w, w.endsWith("\nMigration " + out + " COMPLETED\n"));

            // one that does not complete: the command fails with its end state
            ok("postcopy:block-create it-mw2 32M");
            ok("postcopy:workload fill it-mw2");
            ExecutorService bg = Executors.newSingleThreadExecutor();
            try {
                Future<Result> watching = bg.submit(() -> run("postcopy:migrate --watch --postcopy-now --max-bandwidth 4M "
                        + "--blocks it-mw2 127.0.0.1:" + port));
                String out2 = Await.until("the second migration in POSTCOPY", Duration.ofSeconds(20), Duration.ofMillis(50),
                        () -> find("\\n(out-\\d+) +\\| out \\| \\S+ +\\| POSTCOPY ", ok("postcopy:status")), java.util.Objects::nonNull);
                ok("postcopy:cancel " + out2);
                Result r = watching.get(60, TimeUnit.SECONDS);
                assertNotNull("migrate --watch of a cancelled migration fails; printed:\n" + r.out(), r.failure());
                assertTrue(r.failure().getMessage(), r.failure().getMessage().startsWith("postcopy:migrate: migration " + out2
                        + " CANCELLED: cancelled on the source"));
                assertTrue(r.out(), r.out().matches("(?s)Started migration " + out2 + " .*\\n +\\d+\\.\\ds " + out2 + " +POSTCOPY .*"));
            } finally {
                bg.shutdownNow();
            }
        } finally {
            ok("postcopy:cancel listen-" + port);
        }
        for (String in : ok("postcopy:status").split("\n")) {
            Matcher mm = Pattern.compile("^(in-\\d+) +\\| in  \\| \\S+ +\\| POSTCOPY_PAUSED").matcher(in);
            if (mm.find()) ok("postcopy:cancel " + mm.group(1));
        }
        for (String b : new String[] {"it-mw/it-mw", "it-mw/it-mw2", "it-mw", "it-mw2"})
            if (ok("postcopy:blocks").contains(b + " ")) ok("postcopy:block-remove " + b);
    }

    /** Names of the live threads that start with {@code prefix}, after waiting up to 10 s for them to go. */
    private static java.util.List<String> threadsAfterAWhile(String prefix) {
        return Await.until("threads " + prefix + "* gone", Duration.ofSeconds(10), Duration.ofMillis(50), () -> {
            java.util.List<String> left = new java.util.ArrayList<>();
            for (Thread t : Thread.getAllStackTraces().keySet())
                if (t.isAlive() && t.getName().startsWith(prefix)) left.add(t.getName());
            return left;
        }, java.util.List::isEmpty);
    }

    /**
     * Issue 17: the reader a listener's --workload starts at RUN ends with its migration, COMPLETED or not (it ran
     * flat out until Karaf stopped), and postcopy:workload list says for which migration it ran.
     */
    @Test
    public void listenerReadersEndWithTheirMigration() throws Exception {
        String l = ok("postcopy:listen --prefix it-wl/ --workload uniform 0");
        int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));
        try {
            ok("postcopy:block-create it-wa 32M");
            ok("postcopy:workload fill it-wa");
            ok("postcopy:migrate --wait --postcopy-now --blocks it-wa 127.0.0.1:" + port);
            String list = ok("postcopy:workload list");
            String in = group("\\nit-wl/it-wa +\\| (in-\\d+) +\\| ", list);
            assertEquals(java.util.List.of(), threadsAfterAWhile("workload-it-wl/it-wa-"));
            assertEquals(java.util.List.of(), threadsAfterAWhile("postcopy-reader-end-" + in));
            assertTrue(ok("postcopy:workload list"), ok("postcopy:workload list").matches(
                    "(?s).*\\nit-wl/it-wa +\\| " + in + " +\\| ended +\\| \\d\\d:\\d\\d:\\d\\d \\|.*"));

            // a migration that ends otherwise after RUN (cancelled on the destination in postcopy): the reader goes too
            ok("postcopy:block-create it-wb 32M");
            ok("postcopy:workload fill it-wb");
            String out = group("Started migration (out-\\d+) to ",
                    ok("postcopy:migrate --postcopy-now --max-bandwidth 4M --blocks it-wb 127.0.0.1:" + port));
            String in2 = Await.until("a reader running for the second migration", Duration.ofSeconds(20), Duration.ofMillis(20),
                    () -> find("\\nit-wl/it-wb +\\| (in-\\d+) +\\| running ", ok("postcopy:workload list")), java.util.Objects::nonNull);
            boolean readerThread = false;    // the check below can fail: the thread is there while it runs
            for (Thread t : Thread.getAllStackTraces().keySet()) readerThread |= t.getName().startsWith("workload-it-wl/it-wb-");
            assertTrue(readerThread);
            ok("postcopy:cancel " + in2);
            assertEquals(java.util.List.of(), threadsAfterAWhile("workload-it-wl/it-wb-"));
            assertEquals(java.util.List.of(), threadsAfterAWhile("postcopy-reader-end-" + in2));
            ok("postcopy:cancel " + out);
        } finally {
            ok("postcopy:cancel listen-" + port);
        }
        ok("postcopy:workload stop --all");
        for (String b : new String[] {"it-wl/it-wa", "it-wl/it-wb", "it-wa", "it-wb"})
            if (ok("postcopy:blocks").contains(b + " ")) ok("postcopy:block-remove " + b);
    }

    /** Issue 12: cancelling a paused postcopy migration says plainly what each side keeps, and what never arrived. */
    @Test
    public void cancelOfAPausedMigrationSaysWhatIsKept() throws Exception {
        String l = ok("postcopy:listen --prefix it-cp/ 0");
        int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));
        try {
            ok("postcopy:block-create it-c 32M");
            ok("postcopy:workload fill it-c");
            String out = group("Started migration (out-\\d+) to ",
                    ok("postcopy:migrate --postcopy-now --max-bandwidth 4M --blocks it-c 127.0.0.1:" + port));
            Await.until(out + " in POSTCOPY", Duration.ofSeconds(20), Duration.ofMillis(20),
                    () -> ok("postcopy:status").matches("(?s).*\\n" + out + " +\\| out \\| \\S+ +\\| POSTCOPY .*"));
            ok("postcopy:pause " + out);
            String table = Await.until("the incoming migration POSTCOPY_PAUSED", Duration.ofSeconds(10), Duration.ofMillis(20),
                    () -> ok("postcopy:status"), t -> t.matches("(?s).*\\n(in-\\d+) +\\| in  \\| \\S+ +\\| POSTCOPY_PAUSED.*"));
            String in = group("\\n(in-\\d+) +\\| in  \\| \\S+ +\\| POSTCOPY_PAUSED", table);
            String din = ok("postcopy:cancel " + in);
            assertTrue(din, din.contains("Cancelled migration " + in + " (was POSTCOPY_PAUSED, now CANCELLED)"));
            assertTrue(din, din.contains("the source kept the guest paused and all of its RAM"));
            assertTrue(din, din.matches("(?s).*Never arrived here: \\d+ bytes in \\d+ ranges?.*\\n  (it-cp/)?it-c 0x[0-9a-f]+ \\+0x[0-9a-f]+.*"));
            String dout = ok("postcopy:cancel " + out);
            assertTrue(dout, dout.contains("Cancelled migration " + out + " (was POSTCOPY_PAUSED, now CANCELLED)"));
            assertTrue(dout, dout.contains("Kept here: the guest, paused, and all of its RAM"));
        } finally {
            ok("postcopy:cancel listen-" + port);
        }
        ok("postcopy:block-remove it-c");
    }

    /** Issue 12 through the shell: pause a postcopy migration on purpose, see both sides paused, resume it, verify. */
    @Test
    public void pauseAndResumeAPostcopyMigration() throws Exception {
        String l = ok("postcopy:listen --prefix it-rd/ 0");
        int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));
        try {
            ok("postcopy:block-create it-r 64M");
            ok("postcopy:workload fill it-r");
            String out = group("Started migration (out-\\d+) to ",
                    ok("postcopy:migrate --postcopy-now --max-bandwidth 16M --blocks it-r 127.0.0.1:" + port));
            Await.until(out + " in POSTCOPY", Duration.ofSeconds(20), Duration.ofMillis(20),
                    () -> ok("postcopy:status").matches("(?s).*\\n" + out + " +\\| out \\| \\S+ +\\| POSTCOPY .*"));
            String paused = ok("postcopy:pause " + out);
            assertTrue(paused, paused.startsWith("Migration " + out + ": POSTCOPY_PAUSED (resume with postcopy:resume on the source)"));
            // the destination finds the connection closed a moment later
            String table = Await.until("the incoming migration POSTCOPY_PAUSED", Duration.ofSeconds(10), Duration.ofMillis(20),
                    () -> ok("postcopy:status"), t -> t.matches("(?s).*\\n(in-\\d+) +\\| in  \\| \\S+ +\\| POSTCOPY_PAUSED.*"));
            String in = group("\\n(in-\\d+) +\\| in  \\| \\S+ +\\| POSTCOPY_PAUSED", table);
            // the same through JMX: the state, and why
            String mbean = "io.postcopy:type=Migration,id=" + in;
            awaitMBean(mbean);
            assertEquals("POSTCOPY_PAUSED", attr(mbean, "State"));
            assertTrue(String.valueOf(attr(mbean, "Reason")), String.valueOf(attr(mbean, "Reason"))
                    .endsWith("; waiting for the source to resume"));
            String resumed = ok("postcopy:resume " + out + " 127.0.0.1:" + port);
            assertTrue(resumed, resumed.startsWith("Migration " + out + ": resumed to 127.0.0.1:" + port + ", now POSTCOPY"));
            assertTrue(ok("postcopy:status --watch --interval 100ms " + out).contains("): COMPLETED"));
            assertTrue(ok("postcopy:status --watch --interval 100ms " + in).contains("): COMPLETED"));
            assertTrue(ok("postcopy:workload verify it-rd/it-r").startsWith("OK block it-rd/it-r: 16384 pages, 0 zero, 16384 filled"));
            assertTrue(error("postcopy:resume " + out + " 127.0.0.1:" + port).contains("not POSTCOPY_PAUSED"));
        } finally {
            ok("postcopy:cancel listen-" + port);
        }
        ok("postcopy:block-remove it-rd/it-r");
        ok("postcopy:block-remove it-r");
    }

    @Test
    public void malformedStreamFailsWithThePreciseErrorAndTheListenerGoesOn() throws Exception {
        String l = ok("postcopy:listen --prefix it-bad/ 0");
        int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));
        try (Socket s = new Socket("127.0.0.1", port)) {
            OutputStream o = s.getOutputStream();
            // a valid header (QEVM, version 3), then a section type that does not exist
            o.write(new byte[] {'Q', 'E', 'V', 'M', 0, 0, 0, 3, (byte) 0xff, (byte) 0xfe, (byte) 0xfd, (byte) 0xfc});
            o.flush();
            s.setSoTimeout(10_000);
            try {
                while (s.getInputStream().read() >= 0) {
                    // the destination answers on the return path (SHUT 1) and closes
                }
            } catch (java.io.IOException closedOrSilent) {
                // a reset, or nothing more within 10 s: the status below tells
            }
        }
        String failed = "\\n(in-\\d+) +\\| in  \\| 127\\.0\\.0\\.1:\\d+ +\\| FAILED";
        String in = find(failed, Await.until("a FAILED incoming migration", Duration.ofSeconds(5), Duration.ofMillis(100),
                () -> ok("postcopy:status"), t -> find(failed, t) != null));
        String detail = ok("postcopy:status " + in);
        assertTrue(detail, detail.contains("Failure    MALFORMED at offset 8: section type = 0xff, expected 0x00..0x08"));

        // the listener goes on: a valid migration to the same port completes
        ok("postcopy:block-create it-good 16M");
        ok("postcopy:workload --seed 3 fill it-good");
        String m = ok("postcopy:migrate --postcopy-now --max-bandwidth 64M --blocks it-good 127.0.0.1:" + port);
        assertTrue(m, m.trim().endsWith("1 block, 16 MiB, postcopy, at most 64 MiB/s"));
        String out = group("Started migration (out-\\d+) to ", m);
        String watch = ok("postcopy:status --watch " + out);
        assertTrue(watch, watch.contains("): COMPLETED"));
        String st = ok("postcopy:status " + out);
        assertTrue(st, st.contains("Bandwidth  at most 64 MiB/s (background pages)"));
        String v = ok("postcopy:workload verify it-bad/it-good");
        assertTrue(v, v.startsWith("OK block it-bad/it-good: 4096 pages, 0 zero, 4096 filled"));
        ok("postcopy:cancel listen-" + port);
        ok("postcopy:block-remove it-bad/it-good");
        ok("postcopy:block-remove it-good");
    }
}
