package io.postcopy.itests.qemu;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * One {@code qemu-system-x86_64} process: TCG, {@code -machine pc} with {@code pc.ram} backed by a shared
 * file in {@code /dev/shm} (so the block's exact content can be hashed from outside), no default devices,
 * no display, serial console to a file, QMP on a Unix socket. Source (runs the guest) or destination
 * ({@code -incoming tcp:127.0.0.1:PORT}). Logs (command line, stdout/stderr, serial) stay in the work
 * directory under {@code target/}; the RAM file is deleted on {@link #close()}. {@link #close()} always
 * kills the process, and a shutdown hook kills whatever is left if the test JVM goes down.
 */
public final class QemuProcess implements AutoCloseable {
    public static final String BINARY = System.getProperty("qemu.binary", "qemu-system-x86_64");
    /** Where QEMU 10.0 was unpacked ({@code dpkg -x} of Debian's bookworm-backports packages; {@code .ci/run} does it). */
    public static final Path QEMU10_DIR = Path.of(System.getProperty("qemu10.dir",
            System.getenv().getOrDefault("QEMU10_DIR", "/opt/qemu-10.0")));

    /**
     * Which QEMU runs: its binary and the firmware directories it needs ({@code -L}, searched in order).
     *
     * @param label  for reports ("QEMU 7.2", "QEMU 10.0")
     * @param major  the major version, for the few checks that differ by version (what QEMU sends, not what we accept)
     */
    public record Qemu(String label, int major, String binary, List<String> firmwareArgs) {
        /** The system's QEMU (Debian bookworm: 7.2), or {@code -Dqemu.binary}. */
        public static final Qemu SYSTEM = new Qemu("QEMU 7.2", 7, BINARY, List.of());
        /** Debian's QEMU 10.0 from bookworm-backports, unpacked in {@link #QEMU10_DIR}; its default machine type (pc-i440fx-10.0). */
        public static final Qemu V10 = new Qemu("QEMU 10.0", 10, QEMU10_DIR.resolve("usr/bin/qemu-system-x86_64").toString(),
                List.of("-L", QEMU10_DIR.resolve("usr/share/qemu").toString(), "-L", QEMU10_DIR.resolve("usr/share/seabios").toString()));

        /** Whether this binary runs here ({@code --version} exits 0). */
        public boolean available() {
            try {
                Process p = new ProcessBuilder(binary, "--version").redirectErrorStream(true).start();
                p.getInputStream().readAllBytes();
                return p.waitFor(20, TimeUnit.SECONDS) && p.exitValue() == 0;
            } catch (IOException e) {
                return false;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }

        /** The first line of {@code --version} ("QEMU emulator version 10.0.2 (Debian ...)"), or "?" . */
        public String version() {
            try {
                Process p = new ProcessBuilder(binary, "--version").redirectErrorStream(true).start();
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                p.waitFor(20, TimeUnit.SECONDS);
                return out.lines().findFirst().orElse("?");
            } catch (IOException e) {
                return "?";
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return "?";
            }
        }

        /**
         * Class condition for the QEMU 10.0 variants of the interop tests: the 7.2 conditions (root, /dev/shm) and
         * the unpacked QEMU 10.0. Without it: a loud banner and the class is skipped, except under CI ({@code CI=true}),
         * where {@code .ci/run} unpacks it, so a missing QEMU 10.0 is an error there, not a skip.
         */
        public static boolean v10Usable() {
            if (!QemuToQemuPostcopyIT.qemuUsable()) return false;
            if (V10.available()) return true;
            String why = V10.binary + " does not run (unpack Debian's bookworm-backports qemu-system-x86 10.0 there: see .ci/run,"
                    + " or set -Dqemu10.dir / QEMU10_DIR)";
            if ("true".equals(System.getenv("CI"))) {
                throw new IllegalStateException("CI: QEMU 10.0 missing: " + why);
            }
            String banner = "\n" + "#".repeat(100) + "\n#  SKIPPING the QEMU 10.0 interop tests: " + why
                    + "\n#  QEMU 10.0 -> our destination was NOT tested.\n" + "#".repeat(100) + "\n";
            System.out.println(banner);
            System.err.println(banner);
            return false;
        }
    }
    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly), "qemu-killer"));
    }

    /** What to start. */
    public static final class Config {
        final String name;
        final Path workDir;
        long ramBytes = (256L << 20) + 8192;
        Integer incomingPort;
        Qemu qemu = Qemu.SYSTEM;
        boolean startPaused;
        final List<String> guestArgs = new ArrayList<>();

        public Config(String name, Path workDir) {
            this.name = name;
            this.workDir = workDir;
        }

        /** Guest RAM; keep it off powers of two (QEMU 7.2 TCG loses writes during migration at 2^n sizes). */
        public Config ram(long bytes) {
            this.ramBytes = bytes;
            return this;
        }

        /** Which QEMU (default: the system's 7.2). */
        public Config qemu(Qemu qemu) {
            this.qemu = qemu;
            return this;
        }

        /** Destination: {@code -incoming tcp:127.0.0.1:PORT}. */
        public Config incoming(int port) {
            this.incomingPort = port;
            return this;
        }

        /** {@code -S}: a source does not start its CPUs; a destination stays paused after the migration. */
        public Config paused(boolean paused) {
            this.startPaused = paused;
            return this;
        }

        public Config args(List<String> args) {
            guestArgs.addAll(args);
            return this;
        }

        public Config args(String... args) {
            return args(List.of(args));
        }
    }

    private final Config config;
    private final Path ramFile;
    private final Path serialLog;
    private final Path socketDir;
    private final Process process;
    private final Qmp qmp;

    private QemuProcess(Config c) throws IOException, InterruptedException {
        this.config = c;
        Files.createDirectories(c.workDir);
        this.ramFile = Path.of("/dev/shm", "postcopy-itest-" + ProcessHandle.current().pid() + "-" + c.name + ".ram");
        Files.deleteIfExists(ramFile);
        this.serialLog = c.workDir.resolve("serial.log");
        Files.deleteIfExists(serialLog);
        // sun_path is 108 bytes: keep the socket short, outside target/
        this.socketDir = Files.createTempDirectory("qmp-");
        Path sock = socketDir.resolve("qmp.sock");
        List<String> cmd = new ArrayList<>(List.of(c.qemu.binary(),
                "-name", c.name,
                "-accel", "tcg",
                "-machine", "pc,memory-backend=pc.ram",
                "-object", "memory-backend-file,id=pc.ram,size=" + c.ramBytes + ",mem-path=" + ramFile + ",share=on",
                "-nodefaults", "-display", "none", "-monitor", "none",
                "-serial", "file:" + serialLog,
                "-qmp", "unix:" + sock + ",server=on,wait=off"));
        cmd.addAll(c.qemu.firmwareArgs());
        if (c.startPaused) {
            cmd.add("-S");
        }
        if (c.incomingPort != null) {
            cmd.addAll(List.of("-incoming", "tcp:127.0.0.1:" + c.incomingPort));
        }
        cmd.addAll(c.guestArgs);
        Files.writeString(c.workDir.resolve("cmdline.txt"), String.join(" ", cmd) + "\n", StandardCharsets.UTF_8);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(c.workDir.resolve("qemu.log").toFile());
        this.process = pb.start();
        LIVE.add(process);
        Qmp q = null;
        try {
            q = Qmp.connect(c.name, sock, Duration.ofSeconds(30));
        } finally {
            if (q == null) {
                kill();
            }
        }
        this.qmp = q;
    }

    public static QemuProcess start(Config config) throws IOException, InterruptedException {
        return new QemuProcess(config);
    }

    /** Whether {@code qemu-system-x86_64} can be run here. */
    public static boolean available() {
        try {
            Process p = new ProcessBuilder(BINARY, "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(20, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    public Qemu qemu() {
        return config.qemu;
    }

    public String name() {
        return config.name;
    }

    public Qmp qmp() {
        return qmp;
    }

    /** The file backing {@code pc.ram} (its exact content: the block as QEMU sees it). */
    public Path ramFile() {
        return ramFile;
    }

    public long ramBytes() {
        return config.ramBytes;
    }

    public Path workDir() {
        return config.workDir;
    }

    public Path serialLog() {
        return serialLog;
    }

    public boolean alive() {
        return process.isAlive();
    }

    /** Waits until the serial log contains {@code text}; fails early if QEMU exits. */
    public void awaitSerial(String text, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (Files.exists(serialLog) && Files.readString(serialLog, StandardCharsets.ISO_8859_1).contains(text)) {
                return;
            }
            if (!process.isAlive()) {
                throw new IOException(config.name + " exited (" + process.exitValue() + ") before printing '" + text
                        + "'; see " + config.workDir);
            }
            Thread.sleep(100);
        }
        throw new IOException(config.name + ": '" + text + "' not on the serial console within " + timeout
                + "; see " + serialLog);
    }

    private void kill() {
        process.destroyForcibly();
        try {
            process.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LIVE.remove(process);
    }

    /**
     * SIGTERM (QEMU exits cleanly on it, and unlike QMP {@code quit} it cannot queue behind a command that
     * blocks, e.g. a {@code pmemsave} waiting for a page that never comes), then SIGKILL after 3 s; deletes
     * the RAM file and the socket directory. Never throws.
     */
    @Override
    public void close() {
        if (qmp != null) {
            qmp.close();
        }
        process.destroy();
        try {
            if (!process.waitFor(3, TimeUnit.SECONDS)) {
                kill();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            kill();
        }
        LIVE.remove(process);
        try {
            Files.deleteIfExists(ramFile);
            Files.deleteIfExists(socketDir.resolve("qmp.sock"));
            Files.deleteIfExists(socketDir);
        } catch (IOException ignored) {
            // best effort
        }
    }
}
