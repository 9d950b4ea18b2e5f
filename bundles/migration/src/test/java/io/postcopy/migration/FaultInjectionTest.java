package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.postcopy.fault.MissingPages;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.workload.VerifyResult;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 12, part 4: faults injected into a real network between two JVMs. The test creates a network namespace
 * joined to the root one by a veth pair; the other side of each migration is a child JVM ({@link FaultPeer}) run
 * inside the namespace, so every byte crosses the veth and the namespace's iptables. Each case ends with every
 * page checked ({@link Workload#verify}), no wrong read by a guest, and no thread or file descriptor of the
 * migration left in this JVM.
 *
 * <ul>
 *   <li>a cut by RST (ss -K in the namespace: both ends reset), a resume refused while the port rejects, then a
 *       resume that completes;
 *   <li>a silent partition (iptables DROP both ways): both sides pause within silenceTimeoutMillis, and resume once
 *       the drop is lifted;
 *   <li>kill -9 of the destination JVM: the source pauses with its guest paused and its RAM intact;
 *   <li>kill -9 of the source JVM: the destination pauses, its guest stays blocked, cancel lists what is missing;
 *   <li>five cut/resume cycles (RST, and a REJECT with tcp-reset) in one migration;
 *   <li>a RST of the postcopy-preempt channel alone.
 * </ul>
 *
 * Needs root and iproute2/iptables: without them it is skipped with a banner, unless the environment variable
 * {@code POSTCOPY_FAULT_INJECTION=required} (CI) makes that a failure.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FaultInjectionTest {
    static final String PREFIX = "pcft-";
    static final long SIZE_MIB = 64;
    static final long PAGES = (SIZE_MIB << 20) / Workload.PAGE_SIZE;
    static final int SILENCE_MS = 1500;

    static String ns, vethHost, hostIp, nsIp;
    static final List<Peer> peers = new CopyOnWriteArrayList<>();

    // ---- the network ----

    @BeforeAll
    static void network() throws Exception {
        String missing = unavailable();
        if (missing != null) {
            String banner = "\n" + "#".repeat(100) + "\n# FaultInjectionTest SKIPPED: " + missing
                    + "\n# (needs root, iproute2, iptables; CI sets POSTCOPY_FAULT_INJECTION=required)\n" + "#".repeat(100);
            System.out.println(banner);
            System.err.println(banner);
            if ("required".equals(System.getenv("POSTCOPY_FAULT_INJECTION"))) fail("fault injection required: " + missing);
            Assumptions.assumeTrue(false, missing);
        }
        removeStale();
        long pid = ProcessHandle.current().pid();
        int n = (int) (pid % 16384);          // a /30 of 10.231.0.0/16 per test JVM
        String net = "10.231." + (n >> 6) + ".";
        hostIp = net + ((n & 63) * 4 + 1);
        nsIp = net + ((n & 63) * 4 + 2);
        ns = PREFIX + pid;
        vethHost = "pcft" + pid + "h";
        String vethNs = "pcft" + pid + "n";
        sh("ip", "netns", "add", ns);
        sh("ip", "link", "add", vethHost, "type", "veth", "peer", "name", vethNs);
        sh("ip", "link", "set", vethNs, "netns", ns);
        sh("ip", "addr", "add", hostIp + "/30", "dev", vethHost);
        sh("ip", "link", "set", vethHost, "up");
        inNs("ip", "addr", "add", nsIp + "/30", "dev", vethNs);
        inNs("ip", "link", "set", vethNs, "up");
        inNs("ip", "link", "set", "lo", "up");
        System.out.printf("fault injection: namespace %s, %s (root side, %s) <-> %s (namespace)%n", ns, hostIp, vethHost, nsIp);
    }

    @AfterAll
    static void teardown() throws Exception {
        for (Peer p : peers) p.close();
        if (ns != null) {
            sh("ip", "netns", "del", ns);      // takes the veth pair with it
            ns = null;
        }
    }

    /** Why the suite cannot run here, or null. */
    static String unavailable() {
        try {
            String uid = Files.readAllLines(Path.of("/proc/self/status")).stream().filter(l -> l.startsWith("Uid:"))
                    .findFirst().orElse("Uid: -1").split("\\s+")[1];
            if (!uid.equals("0")) return "not root (uid " + uid + ")";
            if (!Files.exists(Path.of("/dev/userfaultfd")) && !Files.exists(Path.of("/proc/sys/vm/unprivileged_userfaultfd")))
                return "no userfaultfd";
            sh("ip", "netns", "list");
            sh("iptables", "-V");
            sh("ss", "-V");
            return null;
        } catch (Exception e) {
            return e.getMessage();
        }
    }

    /** Namespaces of earlier runs whose JVM is gone (a killed run cannot clean up after itself). */
    static void removeStale() throws Exception {
        for (String line : sh("ip", "netns", "list").split("\n")) {
            String name = line.split(" ")[0];
            if (!name.startsWith(PREFIX)) continue;
            try {
                long owner = Long.parseLong(name.substring(PREFIX.length()));
                if (ProcessHandle.of(owner).isPresent()) continue;
            } catch (NumberFormatException other) {
                // not one of ours by the number: stale all the same
            }
            System.out.println("fault injection: removing stale namespace " + name);
            sh("ip", "netns", "del", name);
        }
    }

    static String inNs(String... cmd) throws IOException, InterruptedException {
        List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", ns));
        c.addAll(Arrays.asList(cmd));
        return sh(c.toArray(String[]::new));
    }

    static String sh(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try (var in = p.getInputStream(); var o = p.getOutputStream()) {
            String out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(20, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", cmd) + ": no exit within 20 s");
            }
            if (p.exitValue() != 0) throw new IOException(String.join(" ", cmd) + ": exit " + p.exitValue() + ": " + out.trim());
            return out;
        }
    }

    /** RST both ways: the namespace's kernel aborts the established connections of {@code port} (SOCK_DESTROY). */
    static void resetConnections(int port) throws Exception {
        inNs("ss", "-K", "-t", "state", "established", "( sport = :" + port + " )");
    }

    static final String[][] REJECT = {
            {"INPUT", "--dport"}, {"OUTPUT", "--sport"}};

    /**
     * Every TCP segment to or from {@code port} inside the namespace answered by a RST (a SYN: refused). The RSTs
     * that REJECT sends pass OUTPUT too, with the port as their source: not rejected themselves.
     */
    static void reject(int port, boolean on) throws Exception {
        for (String[] r : REJECT) {
            inNs("iptables", on ? "-I" : "-D", r[0], "-p", "tcp", r[1], Integer.toString(port), "!", "--tcp-flags", "RST", "RST",
                    "-j", "REJECT", "--reject-with", "tcp-reset");
        }
    }

    /** Every TCP segment to or from {@code port} inside the namespace dropped: no RST, no FIN, nothing. */
    static void drop(int port, boolean on) throws Exception {
        for (String[] r : REJECT) inNs("iptables", on ? "-I" : "-D", r[0], "-p", "tcp", r[1], Integer.toString(port), "-j", "DROP");
    }

    // ---- the other JVM ----

    /** A {@link FaultPeer} JVM, in the namespace or not; its log goes to target/fault-peers/. */
    static final class Peer implements AutoCloseable {
        final String name;
        final Process process;
        final Path log;
        final BlockingQueue<String> answers = new LinkedBlockingQueue<>();
        final Writer commands;
        final Thread pump;

        Peer(String name, boolean inNamespace) throws IOException {
            this.name = name;
            List<String> cmd = new ArrayList<>();
            if (inNamespace) cmd.addAll(List.of("ip", "netns", "exec", ns));   // exec's java: the same pid
            cmd.addAll(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
                    "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"), FaultPeer.class.getName(),
                    Integer.toString(SILENCE_MS)));
            Path dir = Path.of("target", "fault-peers");
            Files.createDirectories(dir);
            log = dir.resolve(name + "-" + System.currentTimeMillis() + ".log");
            process = new ProcessBuilder(cmd).redirectError(log.toFile()).start();
            peers.add(this);
            commands = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
            pump = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String l; (l = r.readLine()) != null; ) if (l.startsWith("@@ ")) answers.add(l.substring(3));
                } catch (IOException ended) {
                    // the peer is gone
                }
            }, "fault-peer-" + name);
            pump.setDaemon(true);
            pump.start();
        }

        String ask(String command) throws IOException, InterruptedException {
            commands.write(command + "\n");
            commands.flush();
            String a = answers.poll(30, TimeUnit.SECONDS);
            if (a == null || a.startsWith("error")) {
                throw new AssertionError("peer " + name + ": " + command + " -> " + a + "; its log " + log + " ends:\n" + tail());
            }
            return a;
        }

        /** STATE READS MISMATCHES REMAINING REASON */
        String[] status() throws IOException, InterruptedException {
            return ask("status").split(" ", 5);
        }

        String state() throws IOException, InterruptedException {
            return status()[0];
        }

        String tail() {
            try {
                List<String> l = Files.readAllLines(log);
                return String.join("\n", l.subList(Math.max(0, l.size() - 40), l.size()));
            } catch (IOException e) {
                return e.toString();
            }
        }

        /** SIGKILL (what destroyForcibly sends on Linux); returns the exit code (137). */
        int kill9() throws IOException, InterruptedException {
            // the JVM itself: `ip netns exec` execs java, so the pid is the same
            assertThat(Long.parseLong(ask("pid"))).isEqualTo(process.pid());
            process.destroyForcibly();
            assertThat(process.waitFor(10, TimeUnit.SECONDS)).isTrue();
            return process.exitValue();
        }

        @Override
        public void close() {
            try {
                if (process.isAlive()) {
                    commands.write("exit\n");
                    commands.flush();
                    if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (IOException | InterruptedException e) {
                process.destroyForcibly();
            }
            try {
                process.getOutputStream().close();
                process.getInputStream().close();
                process.getErrorStream().close();
                pump.join(10_000);
            } catch (IOException | InterruptedException ignored) {
                // closing
            }
            peers.remove(this);
        }
    }

    /** Waits (up to {@code seconds}) until the peer's state satisfies {@code ok}; returns its status. */
    static String[] awaitPeer(Peer p, Predicate<String> ok, int seconds) throws Exception {
        long until = System.nanoTime() + seconds * 1_000_000_000L;
        String[] s;
        do {
            s = p.status();
            if (ok.test(s[0])) return s;
            Thread.sleep(10);
        } while (System.nanoTime() < until);
        throw new AssertionError("peer " + p.name + " still " + String.join(" ", s) + "; its log ends:\n" + p.tail());
    }

    static void awaitState(Migration m, MigrationState s) throws InterruptedException {
        RecoveryTest.awaitState(m, s);
    }

    // ---- threads and file descriptors of this JVM ----

    /** The Java threads and open file descriptors of this JVM at one moment. */
    record Resources(Set<Thread> threads, Map<String, String> fds, int tasks) {
        static Resources now() {
            Set<Thread> t = new HashSet<>(Thread.getAllStackTraces().keySet());
            Map<String, String> f = new HashMap<>();
            try (var d = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
                for (Path p : d) {
                    try {
                        f.put(p.getFileName().toString(), Files.readSymbolicLink(p).toString());
                    } catch (IOException gone) {
                        // the directory stream's own fd, closed meanwhile
                    }
                }
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            String[] tasks = new java.io.File("/proc/self/task").list();
            return new Resources(t, f, tasks == null ? -1 : tasks.length);
        }

        /**
         * JVM-wide threads that come and go with no migration: the JDK's pooled process reapers (alive 60 s after
         * their process), its cleaners (a "Cleaner-0" of the JDK's own starts once, lazily, during the first case and
         * stays; no later case sees another), the attach listener, surefire's.
         */
        static boolean infrastructure(Thread t) {
            String n = t.getName();
            return n.startsWith("process reaper") || n.equals("Common-Cleaner") || n.equals("Attach Listener")
                    || n.startsWith("surefire") || n.startsWith("ForkJoinPool")
                    || n.startsWith("Cleaner-") && t.getClass().getName().equals("jdk.internal.misc.InnocuousThread");
        }

        /**
         * Opened once per JVM and kept: class path jars read lazily, the entropy devices of SecureRandom; and the
         * listing of /proc/self/fd itself, open while it is read.
         */
        static boolean kept(String target) {
            return target.endsWith(".jar") || target.equals("/dev/random") || target.equals("/dev/urandom")
                    || target.startsWith("/proc/");
        }

        /** Waits up to 10 s for everything opened since this snapshot to go, then asserts that it has. */
        void assertNothingLeft(String what) throws InterruptedException {
            List<String> threadsLeft = List.of(), fdsLeft = List.of();
            Resources after = null;
            for (int i = 0; i < 200; i++) {
                after = now();
                threadsLeft = after.threads.stream().filter(t -> t.isAlive() && !threads.contains(t) && !infrastructure(t))
                        .map(Thread::getName).sorted().toList();
                Resources a = after;
                fdsLeft = a.fds.entrySet().stream().filter(e -> !kept(e.getValue()) && !e.getValue().equals(fds.get(e.getKey())))
                        .map(e -> e.getKey() + " -> " + e.getValue()).sorted().toList();
                if (threadsLeft.isEmpty() && fdsLeft.isEmpty()) break;
                Thread.sleep(50);
            }
            System.out.printf("%s: this JVM's Java threads %d -> %d, tasks %d -> %d, fds %d -> %d%n", what, threads.size(),
                    after.threads.size(), tasks, after.tasks, fds.size(), after.fds.size());
            assertThat(threadsLeft).as("%s: threads left behind", what).isEmpty();
            assertThat(fdsLeft).as("%s: file descriptors left open", what).isEmpty();
        }
    }

    /** A source endpoint in this JVM, with its service shut down (its deadline thread ended) at close. */
    static Endpoint endpoint() {
        return new Endpoint(Map.of("silenceTimeoutMillis", SILENCE_MS));
    }

    static void closeEndpoint(Endpoint e) {
        e.close();
        e.service.close();
    }

    /** The source's guest: counts the pauses and resumes the migration asks for. */
    static final class CountingGuest {
        final AtomicInteger pauses = new AtomicInteger(), resumes = new AtomicInteger();
        final GuestControl control = GuestControl.of(pauses::incrementAndGet, resumes::incrementAndGet);
    }

    /** Source here, destination (with a checking reader guest) in the namespace: the setup of all but one case. */
    final class ToNamespace implements AutoCloseable {
        final long seed;
        final Endpoint src = endpoint();
        final Peer dst;
        final int port;
        final InetSocketAddress target;
        final RamBlock ram;
        final CountingGuest guest = new CountingGuest();
        final OutgoingMigration out;

        ToNamespace(String name, long seed, long bandwidth) throws Exception {
            this.seed = seed;
            dst = new Peer(name + "-dst", true);
            port = Integer.parseInt(dst.ask("listen " + nsIp));
            target = new InetSocketAddress(nsIp, port);
            ram = src.registry.create("pc.ram", SIZE_MIB << 20, RamBlock.Backing.ANONYMOUS);
            Workload.fill(ram, seed);
            out = src.service.migrate(target, OutgoingOptions.defaults().withBlocks("pc.ram").withMaxBandwidth(bandwidth)
                    .withGuest(guest.control));
            awaitState(out, MigrationState.POSTCOPY);
            // the destination's guest runs and reads
            long until = System.nanoTime() + 20_000_000_000L;
            while (true) {
                String[] s = dst.status();
                if (s[0].equals("POSTCOPY") && Long.parseLong(s[1]) > 0) break;
                if (System.nanoTime() > until) throw new AssertionError("destination: " + String.join(" ", s) + "\n" + dst.tail());
                Thread.sleep(10);
            }
        }

        /** Both sides paused: returns {source's pause, destination's pause} in ms after {@code t0}. */
        long[] awaitPaused(long t0) throws Exception {
            awaitState(out, MigrationState.POSTCOPY_PAUSED);
            long s = (System.nanoTime() - t0) / 1_000_000;
            awaitPeer(dst, "POSTCOPY_PAUSED"::equals, 20);
            long d = (System.nanoTime() - t0) / 1_000_000;
            return new long[] {s, d};
        }

        /** Resumes; returns ms from resume() to the source's POSTCOPY (the destination's RESUME_ACK). */
        double resume() throws Exception {
            long t = System.nanoTime();
            out.resume(target);
            awaitState(out, MigrationState.POSTCOPY);
            double ms = (System.nanoTime() - t) / 1e6;
            awaitPeer(dst, "POSTCOPY"::equals, 20);
            return ms;
        }

        /** Completes, then checks every page of the destination and that its guest read nothing wrong. */
        void completeAndVerify() throws Exception {
            assertThat(out.awaitCompletion(Duration.ofSeconds(40))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            String[] s = awaitPeer(dst, st -> MigrationState.valueOf(st).isFinal(), 20);
            assertThat(s[0]).as("destination: %s", String.join(" ", s)).isEqualTo("COMPLETED");
            assertThat(Long.parseLong(s[2])).as("destination guest's wrong reads").isZero();
            // PAGES MISMATCHED ZERO FILLED WRITTEN: every page the seed's image, none missing (zero)
            assertThat(dst.ask("verify " + seed)).isEqualTo(PAGES + " 0 0 " + PAGES + " 0");
            assertThat(Workload.verify(ram, seed).filledPages()).isEqualTo(PAGES);
            assertThat(guest.resumes.get()).as("source guest resumed").isZero();
        }

        @Override
        public void close() {
            dst.close();
            closeEndpoint(src);
        }
    }

    // ---- the cases ----

    /** (a) A cut by RST during postcopy; a resume while the port still rejects fails and stays paused; then one that goes through. */
    @Test
    void aCutByResetPausesBothSidesAndAResumeCompletes() throws Exception {
        Resources before = Resources.now();
        try (ToNamespace m = new ToNamespace("cut", 41, 16L << 20)) {
            Thread.sleep(300);
            long remaining = m.out.progress().remainingPages();
            long t0 = System.nanoTime();
            reject(m.port, true);           // no new connection either, until lifted
            resetConnections(m.port);
            long[] paused = m.awaitPaused(t0);
            String reason = m.out.reason().orElseThrow();
            assertThat(reason).contains("the destination was running the guest").endsWith("; waiting for resume");
            assertThat(m.dst.status()[4]).endsWith("; waiting for the source to resume");
            // refused while the namespace rejects: still paused, ready for another resume
            m.out.resume(m.target);
            Await.until("the source paused again after the refused resume", Duration.ofSeconds(20),
                    () -> m.out.state() == MigrationState.POSTCOPY_PAUSED && m.out.reason().orElse("").startsWith("resume to"));
            assertThat(m.out.state()).isEqualTo(MigrationState.POSTCOPY_PAUSED);
            assertThat(m.out.reason()).hasValueSatisfying(r -> assertThat(r).startsWith("resume to").endsWith("; still paused"));
            String refused = m.out.reason().orElseThrow();
            reject(m.port, false);
            double resumeMs = m.resume();
            m.completeAndVerify();
            System.out.printf("(a) RST cut: %d pages unsent at the cut; source paused after %d ms, destination after %d ms (%s); "
                    + "refused resume: %s; resume to RESUME_ACK %.1f ms%n", remaining, paused[0], paused[1], reason, refused, resumeMs);
        }
        before.assertNothingLeft("(a) RST cut");
    }

    /** (b) A silent partition: both sides find the connection silent within silenceTimeoutMillis, and resume once it is lifted. */
    @Test
    void aSilentPartitionIsDetectedWithinTheTimeoutAndRecovered() throws Exception {
        Resources before = Resources.now();
        try (ToNamespace m = new ToNamespace("partition", 43, 16L << 20)) {
            Thread.sleep(300);
            long t0 = System.nanoTime();
            drop(m.port, true);
            long[] paused;
            try {
                paused = m.awaitPaused(t0);
            } finally {
                drop(m.port, false);
            }
            String srcReason = m.out.reason().orElseThrow(), dstReason = m.dst.status()[4];
            System.out.printf("(b) silent partition: detected by the source after %d ms, by the destination after %d ms "
                    + "(silenceTimeoutMillis %d); source: %s; destination: %s%n", paused[0], paused[1], SILENCE_MS, srcReason, dstReason);
            assertThat(srcReason).contains("silenceTimeoutMillis");
            assertThat(dstReason).contains("silenceTimeoutMillis");
            assertThat(paused[0]).isLessThan(SILENCE_MS + 1000L);
            assertThat(paused[1]).isLessThan(SILENCE_MS + 1000L);
            double resumeMs = m.resume();
            m.completeAndVerify();
            System.out.printf("(b) silent partition: resume to RESUME_ACK %.1f ms%n", resumeMs);
        }
        before.assertNothingLeft("(b) silent partition");
    }

    /** (c) kill -9 of the destination JVM: the source pauses, keeps its guest paused and its RAM intact. */
    @Test
    void theDestinationKilledLeavesTheSourcePausedWithItsRamIntact() throws Exception {
        Resources before = Resources.now();
        try (ToNamespace m = new ToNamespace("killdst", 47, 16L << 20)) {
            Thread.sleep(300);
            long remaining = m.out.progress().remainingPages();
            long t0 = System.nanoTime();
            int exit = m.dst.kill9();
            awaitState(m.out, MigrationState.POSTCOPY_PAUSED);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            String reason = m.out.reason().orElseThrow();
            System.out.printf("(c) destination killed (exit %d) with %d pages unsent: source paused after %d ms: %s%n",
                    exit, remaining, ms, reason);
            assertThat(exit).isEqualTo(137);
            assertThat(reason).contains("the destination was running the guest");
            assertThat(m.out.failure()).isEmpty();
            Thread.sleep(200);
            assertThat(m.out.state()).isEqualTo(MigrationState.POSTCOPY_PAUSED);
            assertThat(m.guest.pauses.get()).isEqualTo(1);
            assertThat(m.guest.resumes.get()).as("source guest resumed").isZero();
            VerifyResult v = Workload.verify(m.ram, m.seed);
            assertThat(v.mismatched()).isZero();
            assertThat(v.filledPages()).isEqualTo(PAGES);
            m.out.cancel();
            assertThat(m.out.awaitCompletion(Duration.ofSeconds(20))).isEqualTo(MigrationState.CANCELLED);
            assertThat(m.guest.resumes.get()).as("source guest resumed after the cancel").isZero();
            assertThat(Workload.verify(m.ram, m.seed).filledPages()).isEqualTo(PAGES);
        }
        before.assertNothingLeft("(c) destination killed");
    }

    /**
     * (d) kill -9 of the source JVM: the destination pauses (it does not fail), its guest's threads stay blocked on
     * the missing pages; its cancel ends it and lists exactly the pages that never arrived.
     */
    @Test
    void theSourceKilledLeavesTheDestinationPausedAndCancelListsWhatIsMissing() throws Exception {
        Resources before = Resources.now();
        long seed = 53;
        Endpoint dst = endpoint();
        AtomicReference<Workload> reader = new AtomicReference<>();
        try (Peer src = new Peer("killsrc-src", true)) {
            IncomingListener l = dst.service.listen(new InetSocketAddress(hostIp, 0), IncomingOptions.defaults().withInsecure(true)
                    .withRemoveBlocksOnFailure(false)     // kept, to see what is in it after the cancel
                    .withGuest(dst.readerGuest("pc.ram", reader,
                            WorkloadOptions.builder().threads(2).ratePerThread(500).checkReads(true).build())));
            assertThat(src.ask("migrate " + hostIp + " " + l.port() + " " + SIZE_MIB + " " + seed + " " + (16L << 20))).isEqualTo("ok");
            awaitPeer(src, "POSTCOPY"::equals, 20);
            Await.until("the incoming migration", Duration.ofSeconds(20), () -> !l.migrations().isEmpty());
            IncomingMigration in = l.migrations().get(0);
            awaitState(in, MigrationState.POSTCOPY);
            Await.until("the destination guest reading", Duration.ofSeconds(20), () -> reader.get() != null && reader.get().reads() > 0);
            Thread.sleep(300);
            long t0 = System.nanoTime();
            int exit = src.kill9();
            awaitState(in, MigrationState.POSTCOPY_PAUSED);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertThat(exit).isEqualTo(137);
            assertThat(in.reason()).hasValueSatisfying(r -> assertThat(r).endsWith("; waiting for the source to resume"));
            assertThat(in.failure()).isEmpty();
            long remaining = in.progress().remainingPages();
            // the guest's threads end up blocked on missing pages: no read returns any more
            Workload w = reader.get();
            long reads = -1;
            for (long stableSince = System.nanoTime(); ; Thread.sleep(20)) {
                long r = w.reads();
                if (r != reads) {
                    reads = r;
                    stableSince = System.nanoTime();
                } else if (System.nanoTime() - stableSince > 1_000_000_000L) {
                    break;
                }
            }
            assertThat(w.readMismatches()).isZero();
            assertThat(in.state()).isEqualTo(MigrationState.POSTCOPY_PAUSED);
            assertThat(remaining).isPositive();
            in.cancel();
            assertThat(in.awaitCompletion(Duration.ofSeconds(20))).isEqualTo(MigrationState.CANCELLED);
            String failure = in.failure().orElseThrow();
            MissingPages missing = in.missing().orElseThrow();
            System.out.printf("(d) source killed (exit %d): destination paused after %d ms with %d pages missing, its guest "
                    + "blocked after %d reads; cancelled: %s; missing() %d ranges, %d bytes%n", exit, ms, remaining, reads,
                    failure, missing.ranges().size(), missing.totalBytes());
            assertThat(failure).isEqualTo("cancelled on the destination; " + missing.totalBytes() + " bytes in "
                    + missing.ranges().size() + (missing.ranges().size() == 1 ? " range" : " ranges") + " never received");
            assertThat(missing.ranges().stream().mapToLong(MissingPages.Range::length).sum()).isEqualTo(missing.totalBytes());
            assertThat(missing.totalBytes()).isEqualTo(remaining * Workload.PAGE_SIZE);
            // what is really missing: the pages that are zero in the kept block, every other one the source's
            w.stop();
            RamBlock block = dst.registry.byName("pc.ram");
            VerifyResult v = Workload.verify(block, seed);
            assertThat(v.mismatched()).isZero();
            assertThat(v.zeroPages() * Workload.PAGE_SIZE).isEqualTo(missing.totalBytes());
            assertThat(v.filledPages()).isEqualTo(PAGES - remaining);
            assertThat(zeroPagesIn(block, missing)).isEqualTo(remaining);
        } finally {
            Workload w = reader.get();
            if (w != null) w.stop();
            closeEndpoint(dst);
        }
        before.assertNothingLeft("(d) source killed");
    }

    /** Pages within the listed ranges that are all zero. */
    static long zeroPagesIn(RamBlock block, MissingPages missing) {
        long zero = io.postcopy.uffd.NativeMemory.mmap(Workload.PAGE_SIZE, io.postcopy.uffd.NativeMemory.PROT_READ,
                io.postcopy.uffd.NativeMemory.MAP_PRIVATE | io.postcopy.uffd.NativeMemory.MAP_ANONYMOUS, -1, 0), n = 0;
        try {
            for (MissingPages.Range r : missing.ranges()) {
                for (long o = r.offset(); o < r.offset() + r.length(); o += Workload.PAGE_SIZE) {
                    if (io.postcopy.uffd.NativeMemory.nativeCompare(block.hostAddress() + o, zero, Workload.PAGE_SIZE) == 0) n++;
                }
            }
        } finally {
            io.postcopy.uffd.NativeMemory.munmap(zero, Workload.PAGE_SIZE);
        }
        return n;
    }

    /**
     * (f) A RST on the postcopy-preempt channel alone, the main connection untouched: a lost connection all the
     * same, so both sides pause (the destination closes the main one too) and a resume completes. Before
     * Destination.channelLost the destination failed here ("postcopy-preempt channel ...: IOException: Software
     * caused connection abort"), and (e) did too whenever that channel's thread saw a cut before the main one's.
     */
    @Test
    void aResetOfThePreemptChannelAlonePausesAndResumes() throws Exception {
        Resources before = Resources.now();
        try (ToNamespace m = new ToNamespace("preempt", 61, 16L << 20)) {
            Thread.sleep(300);
            String channel = m.dst.ask("channel");
            java.util.regex.Matcher pm = java.util.regex.Pattern.compile(":(\\d+),").matcher(channel);
            assertThat(pm.find()).as("preempt channel: %s", channel).isTrue();
            long t0 = System.nanoTime();
            inNs("ss", "-K", "-t", "state", "established", "( sport = :" + m.port + " and dport = :" + pm.group(1) + " )");
            long[] paused = m.awaitPaused(t0);
            String srcReason = m.out.reason().orElseThrow(), dstReason = m.dst.status()[4];
            // which side saw it first decides the reason: the source (writing a requested page) closes both, or the
            // destination's channel thread does (its reason then names the channel)
            assertThat(dstReason).endsWith("; waiting for the source to resume");
            double resumeMs = m.resume();
            m.completeAndVerify();
            System.out.printf("(f) preempt channel %s reset alone: paused after %d ms (source: %s) / %d ms (destination: %s); "
                    + "resume to RESUME_ACK %.1f ms%n", channel, paused[0], srcReason, paused[1], dstReason, resumeMs);
        }
        before.assertNothingLeft("(f) preempt channel reset");
    }

    /** (e) Five cut/resume cycles in one migration, across the veth: RST both ways, and REJECT with tcp-reset. */
    @Test
    void fiveCutsAndResumesAcrossJvms() throws Exception {
        Resources before = Resources.now();
        try (ToNamespace m = new ToNamespace("cycles", 59, 4L << 20)) {
            for (int cycle = 1; cycle <= 5; cycle++) {
                Thread.sleep(150);
                long remaining = m.out.progress().remainingPages();
                long t0 = System.nanoTime();
                boolean byReject = cycle % 2 == 0;
                long[] paused;
                if (byReject) {
                    reject(m.port, true);
                    try {
                        paused = m.awaitPaused(t0);
                    } finally {
                        reject(m.port, false);
                    }
                } else {
                    resetConnections(m.port);
                    paused = m.awaitPaused(t0);
                }
                String[] d = m.dst.status();
                assertThat(d[2]).as("destination guest's wrong reads").isEqualTo("0");
                double resumeMs = m.resume();
                System.out.printf("(e) cycle %d (%s): %d pages unsent; paused after %d ms (source) / %d ms (destination); "
                        + "resume to RESUME_ACK %.1f ms%n", cycle, byReject ? "REJECT tcp-reset" : "ss -K", remaining,
                        paused[0], paused[1], resumeMs);
            }
            m.completeAndVerify();
        }
        before.assertNothingLeft("(e) five cycles");
    }
}
