package io.postcopy.itests;

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
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * One Karaf process of the distribution built next door ({@code postcopy.distribution}, set by failsafe), run
 * the way an administrator runs it: unpacked into a folder of its own, given free ports (ssh, RMI registry,
 * RMI server, JMXMP, HTTP if present) and no listener at start, started with {@code bin/start}, driven through
 * {@code bin/postcopy-client -a SSH_PORT "COMMAND"} (the admin key created at first start), and stopped with {@code bin/stop} (its JVM, by
 * {@code karaf.pid}, killed if it is still there 30 s later). Used by {@code TwoInstancesIT} and
 * {@code qemu.QemuToKarafIT}.
 */
public final class KarafInstance {
    /** Default bound of one {@link #client} command. */
    public static final long CLIENT_TIMEOUT_S = 120;

    private final String name;
    private final Path home;
    private final int sshPort;

    private KarafInstance(String name, Path home, int sshPort) {
        this.name = name;
        this.home = home;
        this.sshPort = sshPort;
    }

    public String name() {
        return name;
    }

    /** The unpacked distribution's folder (bin/, etc/, data/). */
    public Path home() {
        return home;
    }

    /** {@code data/postcopy-files}: where postcopy:digest and postcopy:inspect may write and read (created, real path). */
    public Path files() throws IOException {
        Path d = home.resolve("data/postcopy-files");
        Files.createDirectories(d);
        return d.toRealPath();
    }

    public int sshPort() {
        return sshPort;
    }

    @Override
    public String toString() {
        return name + " (" + home + ", ssh " + sshPort + ")";
    }

    /** The distribution archive of system property {@code postcopy.distribution}; fails if it is unset or absent. */
    public static File distribution() {
        String path = System.getProperty("postcopy.distribution");
        if (path == null) throw new IllegalStateException("system property postcopy.distribution is not set (run through failsafe)");
        File archive = new File(path);
        if (!archive.isFile())
            throw new IllegalStateException(archive + " does not exist: build the distribution first (mvn -pl itests -am verify)");
        return archive;
    }

    /**
     * Unpacks {@code archive} into {@code dir} and gives the copy free ports not in {@code taken} (which gets
     * them); no {@code postcopy:listen} port at start.
     */
    public static KarafInstance unpack(File archive, Path dir, String name, Set<Integer> taken) throws Exception {
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
        // no listener at start (the default, made explicit: a port there would collide between instances)
        set(etc.resolve("io.postcopy.migration.cfg"), "listenPort", -1);
        return new KarafInstance(name, home, ssh);
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

    /** A TCP port free at this moment on this host, not in {@code taken} (added to it). */
    public static int freePort(Set<Integer> taken) {
        while (true) {
            try (ServerSocket s = new ServerSocket(0)) {
                if (taken.add(s.getLocalPort())) return s.getLocalPort();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /** {@code bin/start} (returns once the JVM is launched in the background); fails unless it exits 0 within 30 s. */
    public void start() throws Exception {
        Process p = script("bin/start")
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(true)
                .redirectOutput(home.resolve("start.out").toFile()).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "bin/start of " + this + " returns");
        assertEquals(0, p.exitValue(), "bin/start of " + this + ": " + Files.readString(home.resolve("start.out")));
    }

    /**
     * Until {@code postcopy:check} answers with its summary (the postcopy commands are registered): at most
     * 120 s (~5 s on an idle 2-core machine, 63 s seen under a load of 8).
     */
    public void awaitShell() throws Exception {
        long start = System.nanoTime();
        long deadline = start + TimeUnit.SECONDS.toNanos(120);
        String last = "";
        while (System.nanoTime() < deadline) {
            ClientResult r = runClient("postcopy:check", 30);
            last = r.output();
            if (last.contains("Postcopy is supported on this host")) {
                System.out.printf("%s answers postcopy:check after %.1f s%n", this, (System.nanoTime() - start) / 1e9);
                return;
            }
            if (last.contains("Postcopy is NOT supported on this host"))
                fail(this + ": postcopy:check says this host cannot be a destination:\n" + last);
            Thread.sleep(1000); // poll interval: the ssh server or the commands are not up yet
        }
        fail(this + " did not answer postcopy:check within 120 s; last output:\n" + last + "\nkaraf.log tail:\n" + logTail());
    }

    /** Exit status and output (stdout and stderr) of one {@code bin/client} run. */
    public record ClientResult(int exit, String output) {}

    /**
     * {@code bin/postcopy-client -a PORT "CMD"} with a standard input kept open until the client exits
     * (without it the client prints only "Closed"); fails if it does not end within {@code timeoutSeconds}.
     */
    public ClientResult runClient(String command, long timeoutSeconds) throws Exception {
        return runClientAs(List.of("bin/postcopy-client", "-a", Integer.toString(sshPort)), command, timeoutSeconds);
    }

    /**
     * {@code bin/client -a PORT -u USER -k KEY "CMD"}: another user, logged in with its own key (e.g. one in
     * {@code _g_:viewergroup}).
     */
    public ClientResult runClientAs(String user, Path key, String command, long timeoutSeconds) throws Exception {
        return runClientAs(List.of("bin/client", "-a", Integer.toString(sshPort), "-u", user, "-k", key.toString()), command,
                timeoutSeconds);
    }

    private ClientResult runClientAs(List<String> client, String command, long timeoutSeconds) throws Exception {
        List<String> args = new java.util.ArrayList<>(client);
        args.add(command);
        Process p = script(args.toArray(new String[0])).redirectErrorStream(true).start();
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
                fail("bin/client \"" + command + "\" on " + this + " did not end within " + timeoutSeconds + " s; output:\n"
                        + buffer.toString(StandardCharsets.UTF_8));
            }
            reader.join(5000);
            return new ClientResult(p.exitValue(), buffer.toString(StandardCharsets.UTF_8));
        } finally {
            stdin.close();
        }
    }

    /** A command that must succeed (exit 0, no "Error executing command", no "Command not found"); its output, also printed. */
    public String client(String command) throws Exception {
        long start = System.nanoTime();
        ClientResult r = runClient(command, CLIENT_TIMEOUT_S);
        System.out.printf("%s> %s  (%.1f s, exit %d)%n%s%n", name, command, (System.nanoTime() - start) / 1e9, r.exit(),
                r.output());
        if (r.exit() != 0 || r.output().contains("Error executing command") || r.output().contains("Command not found"))
            fail(this + ": \"" + command + "\" failed (exit " + r.exit() + "):\n" + r.output());
        return r.output();
    }

    /** A script of the instance's bin/, run in its home with the JDK of this test (no "JAVA_HOME not set"). */
    private ProcessBuilder script(String... command) {
        ProcessBuilder pb = new ProcessBuilder(command).directory(home.toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        return pb;
    }

    /** The last 40 lines of {@code data/log/karaf.log}. */
    public String logTail() {
        try {
            List<String> lines = Files.readAllLines(home.resolve("data/log/karaf.log"));
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException | RuntimeException e) {
            return "(no karaf.log: " + e + ")";
        }
    }

    /**
     * bin/stop, then waits for the JVM of karaf.pid to end; kills it (only that pid) if it does not within 30 s.
     * Never throws.
     */
    public void stop() {
        Optional<ProcessHandle> jvm = Optional.empty();
        try {
            Path pidFile = home.resolve("karaf.pid");
            if (Files.exists(pidFile)) jvm = ProcessHandle.of(Long.parseLong(Files.readString(pidFile).trim()));
        } catch (IOException | NumberFormatException e) {
            System.out.println(this + ": unreadable karaf.pid: " + e);
        }
        try {
            Process p = script("bin/stop")
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true).redirectOutput(home.resolve("stop.out").toFile()).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) p.destroyForcibly();
        } catch (Exception e) {
            System.out.println(this + ": bin/stop failed: " + e);
        }
        jvm.ifPresent(h -> {
            try {
                h.onExit().get(30, TimeUnit.SECONDS);
            } catch (Exception notYet) {
                System.out.println(this + ": still running 30 s after bin/stop, killing pid " + h.pid());
                h.destroyForcibly();
                try {
                    h.onExit().get(10, TimeUnit.SECONDS);
                } catch (Exception e) {
                    System.out.println(this + ": pid " + h.pid() + " did not end: " + e);
                }
            }
        });
        if (jvm.isEmpty()) System.out.println(this + ": no karaf.pid; bin/stop only");
    }

    /** Removes {@code dir} and everything in it (a passed run's folders); says so if it cannot. */
    public static void deleteTree(Path dir) {
        try (var files = java.nio.file.Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            System.out.println("could not remove " + dir + ": " + e);
        }
    }
}
