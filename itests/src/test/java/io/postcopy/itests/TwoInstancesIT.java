package io.postcopy.itests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A migration between two Karaf processes: the distribution built next door ({@code postcopy.distribution})
 * is unpacked twice under {@code target/two-instances/}, each copy gets its own free ports (ssh, RMI registry,
 * RMI server, JMXMP), both are started with {@code bin/start} and driven through {@code bin/client}, exactly as
 * the README's "Migrate between two machines" does: B listens ({@code postcopy:listen --prefix dst/ --workload
 * uniform 0}), A creates and fills a 128 MiB block and migrates it (2 s of precopy while a writing workload
 * runs, then postcopy), both report COMPLETED, and {@code postcopy:digest} of the source block on A and of
 * {@code dst/} + the block on B (SHA-256 of each 4 KiB page) are compared byte for byte. Both instances are
 * stopped with {@code bin/stop}, killed by their {@code karaf.pid} if that fails.
 */
class TwoInstancesIT {
    private static final String BLOCK = "two-ram";
    private static final int PAGES = 32768; // 128 MiB of 4 KiB pages
    private static final long CLIENT_TIMEOUT_S = 120;

    private static final Path ROOT = Path.of("target", "two-instances").toAbsolutePath();
    private static Instance a;
    private static Instance b;
    private static Path run;
    private static volatile boolean passed;

    /** One unpacked distribution with its own ports. */
    record Instance(String name, Path home, int sshPort) {
        @Override
        public String toString() {
            return name + " (" + home + ", ssh " + sshPort + ")";
        }
    }

    @BeforeAll
    static void startBothInstances() throws Exception {
        String path = System.getProperty("postcopy.distribution");
        if (path == null) throw new IllegalStateException("system property postcopy.distribution is not set (run through failsafe)");
        File archive = new File(path);
        if (!archive.isFile())
            throw new IllegalStateException(archive + " does not exist: build the distribution first (mvn -pl itests -am verify)");
        Files.createDirectories(ROOT);
        run = Files.createTempDirectory(ROOT, "run-");
        Set<Integer> taken = new HashSet<>();
        a = unpack(archive, run.resolve("a"), "A", taken);
        b = unpack(archive, run.resolve("b"), "B", taken);
        for (Instance i : List.of(a, b)) {
            Process p = script(i, "bin/start")
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true)
                    .redirectOutput(i.home().resolve("start.out").toFile()).start();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "bin/start of " + i + " returns");
            assertEquals(0, p.exitValue(), "bin/start of " + i + ": " + Files.readString(i.home().resolve("start.out")));
        }
        for (Instance i : List.of(a, b)) awaitShell(i);
    }

    @AfterAll
    static void stopBothInstances() {
        for (Instance i : new Instance[] {a, b}) {
            if (i != null) stop(i);
        }
        if (passed && run != null) { // a failed run keeps its folders (karaf.log, start.out) for the diagnosis
            try (var files = Files.walk(run)) {
                files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            } catch (IOException e) {
                System.out.println("could not remove " + run + ": " + e);
            }
        }
    }

    @Test
    void migrationBetweenTwoKarafProcessesIsIdenticalPageByPage() throws Exception {
        long t0 = System.nanoTime();
        // B: the destination
        String l = client(b, "postcopy:listen --prefix dst/ --workload uniform 0");
        int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));

        // A: the source
        String c = client(a, "postcopy:block-create " + BLOCK + " 128M");
        assertTrue(c.contains("Created block " + BLOCK + ": 128M (134217728 bytes), anonymous"), c);
        String f = client(a, "postcopy:workload --seed 11 fill " + BLOCK);
        assertTrue(f.contains("Filled block " + BLOCK + ": " + PAGES + " pages with content seed 11"), f);
        String m = client(a, "postcopy:migrate --postcopy-after 2s --workload uniform --blocks " + BLOCK
                + " 127.0.0.1:" + port);
        String out = group("Started migration (out-\\d+) to 127\\.0\\.0\\.1:" + port, m);
        assertTrue(m.contains("1 block(s), 128 MiB, hybrid, postcopy after 2s"), m);

        // A follows it to the end (bounded by the client's timeout)
        String watch = client(a, "postcopy:status --watch --interval 500ms " + out);
        assertTrue(watch.contains("Migration  " + out + " (source, to 127.0.0.1:" + port + "): COMPLETED"), watch);
        assertTrue(watch.contains("(" + PAGES + " of " + PAGES + " pages)"), watch);

        // A's digest runs meanwhile (its guest stays paused from the switch, so this is its memory at the switch)
        Path digestA = a.home().resolve("source.sha256");
        CompletableFuture<String> sourceDigest = CompletableFuture.supplyAsync(() -> {
            try {
                return client(a, "postcopy:digest " + BLOCK + " " + digestA);
            } catch (Exception | AssertionError e) {
                throw new CompletionException(e);
            }
        });

        // B: its incoming migration completed too (polled, bounded)
        String in = null;
        String table = "";
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            table = client(b, "postcopy:status");
            Matcher done = Pattern.compile("\\n(in-\\d+) +\\| in  \\| 127\\.0\\.0\\.1:\\d+ +\\| COMPLETED").matcher(table);
            if (done.find()) {
                in = done.group(1);
                break;
            }
            assertTrue(!table.matches("(?s).*\\| (FAILED|CANCELLED) .*"), "B's migration ended badly:\n" + table);
            Thread.sleep(500);
        }
        if (in == null) fail("no COMPLETED incoming migration on B within 30 s:\n" + table);
        String detail = client(b, "postcopy:status " + in);
        assertTrue(detail.contains("(" + PAGES + " of " + PAGES + " pages)"), detail);

        // page by page: SHA-256 of every 4 KiB page, on each side, compared here
        Path digestB = b.home().resolve("destination.sha256");
        String db = client(b, "postcopy:digest dst/" + BLOCK + " " + digestB);
        String da;
        try {
            da = sourceDigest.get(CLIENT_TIMEOUT_S + 10, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof AssertionError x ? x : new AssertionError("digest on A", e.getCause());
        }
        assertTrue(da.contains("Wrote " + PAGES + " page digests (" + PAGES * 32 + " bytes) of block " + BLOCK), da);
        assertTrue(db.contains("Wrote " + PAGES + " page digests (" + PAGES * 32 + " bytes) of block dst/" + BLOCK), db);
        byte[] source = Files.readAllBytes(digestA);
        byte[] destination = Files.readAllBytes(digestB);
        assertEquals(PAGES * 32, source.length, "source digest length");
        assertEquals(PAGES * 32, destination.length, "destination digest length");
        int mismatched = 0;
        int first = -1;
        for (int page = 0; page < PAGES; page++) {
            for (int k = 0; k < 32; k++) {
                if (source[page * 32 + k] != destination[page * 32 + k]) {
                    if (first < 0) first = page;
                    mismatched++;
                    break;
                }
            }
        }
        assertEquals(0, mismatched, "pages differing between A and B (first: page " + first + ")");
        assertArrayEquals(source, destination);

        // the destination's content is also a consistent workload image
        String v = client(b, "postcopy:workload verify dst/" + BLOCK);
        assertTrue(v.contains("OK block dst/" + BLOCK + ": " + PAGES + " pages, ") && v.contains(" 0 mismatched"), v);
        System.out.printf("two instances: %s -> %s, %d pages identical, test body %.1f s%n", out, in, PAGES,
                (System.nanoTime() - t0) / 1e9);
        passed = true;
    }

    // ---- instances ----

    private static Instance unpack(File archive, Path dir, String name, Set<Integer> taken) throws Exception {
        Files.createDirectories(dir);
        Process tar = new ProcessBuilder("tar", "xzf", archive.getAbsolutePath(), "-C", dir.toString())
                .redirectErrorStream(true).start();
        String tarOut = new String(tar.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(tar.waitFor(60, TimeUnit.SECONDS) && tar.exitValue() == 0, "tar: " + tarOut);
        Path home;
        try (var s = Files.list(dir)) {
            List<Path> dirs = s.filter(Files::isDirectory).toList();
            assertEquals(1, dirs.size(), "one folder in the archive: " + dirs);
            home = dirs.get(0);
        }
        Path etc = home.resolve("etc");
        int ssh = freePort(taken);
        set(etc.resolve("org.apache.karaf.shell.cfg"), "sshPort", ssh);
        set(etc.resolve("org.apache.karaf.management.cfg"), "rmiRegistryPort", freePort(taken));
        set(etc.resolve("org.apache.karaf.management.cfg"), "rmiServerPort", freePort(taken));
        set(etc.resolve("org.apache.karaf.management.cfg"), "jmxmpPort", freePort(taken));
        Path web = etc.resolve("org.ops4j.pax.web.cfg");
        if (Files.exists(web)) {
            set(web, "org.osgi.service.http.port", freePort(taken));
            set(web, "org.osgi.service.http.port.secure", freePort(taken));
        }
        // no listener at start (the default, made explicit: a port there would collide between A and B)
        set(etc.resolve("io.postcopy.migration.cfg"), "listenPort", -1);
        return new Instance(name, home, ssh);
    }

    /** Replaces the line {@code key = ...} (or appends it). */
    private static void set(Path file, String key, int value) throws IOException {
        List<String> lines = new ArrayList<>(Files.readAllLines(file));
        Pattern p = Pattern.compile("^\\s*" + Pattern.quote(key) + "\\s*[=:].*$");
        boolean found = false;
        for (int i = 0; i < lines.size(); i++) {
            if (p.matcher(lines.get(i)).matches()) {
                lines.set(i, key + " = " + value);
                found = true;
            }
        }
        if (!found) lines.add(key + " = " + value);
        Files.write(file, lines);
    }

    private static int freePort(Set<Integer> taken) {
        while (true) {
            try (ServerSocket s = new ServerSocket(0)) {
                if (taken.add(s.getLocalPort())) return s.getLocalPort();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /**
     * Until {@code postcopy:check} answers with its summary (the postcopy commands are registered): at most
     * 120 s (~5 s on an idle 2-core machine, 63 s seen under a load of 8).
     */
    private static void awaitShell(Instance i) throws Exception {
        long start = System.nanoTime();
        long deadline = start + TimeUnit.SECONDS.toNanos(120);
        String last = "";
        while (System.nanoTime() < deadline) {
            ClientResult r = runClient(i, "postcopy:check", 30);
            last = r.output();
            if (last.contains("Postcopy is supported on this host")) {
                System.out.printf("%s answers postcopy:check after %.1f s%n", i, (System.nanoTime() - start) / 1e9);
                return;
            }
            if (last.contains("Postcopy is NOT supported on this host"))
                fail(i + ": postcopy:check says this host cannot be a destination:\n" + last);
            Thread.sleep(1000);
        }
        fail(i + " did not answer postcopy:check within 120 s; last output:\n" + last + "\nkaraf.log tail:\n" + logTail(i));
    }

    record ClientResult(int exit, String output) {}

    /**
     * {@code bin/client -a PORT -u karaf -p karaf "CMD"} with a standard input kept open until the client exits
     * (without it the client prints only "Closed").
     */
    private static ClientResult runClient(Instance i, String command, long timeoutSeconds) throws Exception {
        Process p = script(i, "bin/client", "-a", Integer.toString(i.sshPort()), "-u", "karaf", "-p", "karaf", command)
                .redirectErrorStream(true).start();
        OutputStream stdin = p.getOutputStream(); // left open while the command runs
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        Thread reader = new Thread(() -> {
            try (InputStream o = p.getInputStream()) {
                o.transferTo(buffer);
            } catch (IOException ignored) {
                // the process ended
            }
        });
        reader.start();
        try {
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                reader.join(5000);
                fail("bin/client \"" + command + "\" on " + i + " did not end within " + timeoutSeconds + " s; output:\n"
                        + buffer.toString(StandardCharsets.UTF_8));
            }
            reader.join(5000);
            return new ClientResult(p.exitValue(), buffer.toString(StandardCharsets.UTF_8));
        } finally {
            stdin.close();
        }
    }

    /** A script of the instance's bin/, run in its home with the JDK of this test (no "JAVA_HOME not set"). */
    private static ProcessBuilder script(Instance i, String... command) {
        ProcessBuilder pb = new ProcessBuilder(command).directory(i.home().toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        return pb;
    }

    /** A command that must succeed; its output. */
    private static String client(Instance i, String command) throws Exception {
        long start = System.nanoTime();
        ClientResult r = runClient(i, command, CLIENT_TIMEOUT_S);
        System.out.printf("%s> %s  (%.1f s, exit %d)%n%s%n", i.name(), command, (System.nanoTime() - start) / 1e9, r.exit(),
                r.output());
        if (r.exit() != 0 || r.output().contains("Error executing command") || r.output().contains("Command not found"))
            fail(i + ": \"" + command + "\" failed (exit " + r.exit() + "):\n" + r.output());
        return r.output();
    }

    private static String group(String regex, String text) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertTrue(m.find(), "no match for " + regex + " in:\n" + text);
        return m.group(1);
    }

    private static String logTail(Instance i) {
        try {
            List<String> lines = Files.readAllLines(i.home().resolve("data/log/karaf.log"));
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException | RuntimeException e) {
            return "(no karaf.log: " + e + ")";
        }
    }

    /** bin/stop, then waits for the JVM of karaf.pid to end; kills it (only that pid) if it does not within 30 s. */
    private static void stop(Instance i) {
        Optional<ProcessHandle> jvm = Optional.empty();
        try {
            Path pidFile = i.home().resolve("karaf.pid");
            if (Files.exists(pidFile)) jvm = ProcessHandle.of(Long.parseLong(Files.readString(pidFile).trim()));
        } catch (IOException | NumberFormatException e) {
            System.out.println(i + ": unreadable karaf.pid: " + e);
        }
        try {
            Process p = script(i, "bin/stop")
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true).redirectOutput(i.home().resolve("stop.out").toFile()).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) p.destroyForcibly();
        } catch (Exception e) {
            System.out.println(i + ": bin/stop failed: " + e);
        }
        jvm.ifPresent(h -> {
            try {
                h.onExit().get(30, TimeUnit.SECONDS);
            } catch (Exception notYet) {
                System.out.println(i + ": still running 30 s after bin/stop, killing pid " + h.pid());
                h.destroyForcibly();
                try {
                    h.onExit().get(10, TimeUnit.SECONDS);
                } catch (Exception e) {
                    System.out.println(i + ": pid " + h.pid() + " did not end: " + e);
                }
            }
        });
        if (jvm.isEmpty()) System.out.println(i + ": no karaf.pid; bin/stop only");
    }
}
