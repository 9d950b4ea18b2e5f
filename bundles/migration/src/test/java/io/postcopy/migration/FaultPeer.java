package io.postcopy.migration;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.VerifyResult;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The other JVM of {@link FaultInjectionTest}: one side of a migration (an {@link Endpoint}), driven by line
 * commands on stdin; each answer is one stdout line starting with {@code "@@ "} (the log goes to stderr). Started
 * as {@code java -cp <the test class path> io.postcopy.migration.FaultPeer <silenceTimeoutMillis>}, possibly
 * inside a network namespace ({@code ip netns exec NS java ...}), and killed with SIGKILL by some cases.
 *
 * <pre>
 * pid                                   -> @@ PID
 * listen HOST                           -> @@ PORT     (insecure listener on HOST, port 0; a checking reader guest)
 * migrate HOST PORT MIB SEED BYTES/S    -> @@ ok       (block pc.ram filled with SEED, pure postcopy)
 * status                                -> @@ STATE READS MISMATCHES REMAINING REASON...   (NONE when no migration yet)
 * channel                               -> @@ PEER, N pages, M zero pages   (the postcopy-preempt channel; NONE)
 * verify SEED                           -> @@ PAGES MISMATCHED ZERO FILLED WRITTEN   (Workload.verify of pc.ram)
 * cancel                                -> @@ FINAL-STATE
 * exit                                  -> @@ bye, and the JVM exits
 * </pre>
 */
public final class FaultPeer {
    private FaultPeer() {
    }

    public static void main(String[] args) throws Exception {
        int silence = Integer.parseInt(args[0]);
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        System.setOut(System.err);      // nothing else may write the answer lines
        Endpoint e = new Endpoint(Map.of("silenceTimeoutMillis", silence));
        AtomicReference<Workload> reader = new AtomicReference<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] a = line.trim().split(" ");
            String answer;
            try {
                answer = switch (a[0]) {
                    case "pid" -> Long.toString(ProcessHandle.current().pid());
                    case "listen" -> {
                        IncomingListener l = e.service.listen(new InetSocketAddress(a[1], 0), IncomingOptions.defaults()
                                .withInsecure(true).withGuest(e.readerGuest("pc.ram", reader,
                                        WorkloadOptions.builder().threads(2).ratePerThread(500).checkReads(true).build())));
                        yield Integer.toString(l.port());
                    }
                    case "migrate" -> {
                        RamBlock ram = e.registry.create("pc.ram", Long.parseLong(a[3]) << 20, RamBlock.Backing.ANONYMOUS);
                        Workload.fill(ram, Long.parseLong(a[4]));
                        e.service.migrate(new InetSocketAddress(a[1], Integer.parseInt(a[2])), OutgoingOptions.defaults()
                                .withBlocks("pc.ram").withMaxBandwidth(Long.parseLong(a[5])));
                        yield "ok";
                    }
                    case "status" -> {
                        List<Migration> ms = e.service.migrations();
                        if (ms.isEmpty()) yield "NONE";
                        Migration m = ms.get(ms.size() - 1);
                        Workload w = reader.get();
                        yield m.state() + " " + (w == null ? 0 : w.reads()) + " " + (w == null ? 0 : w.readMismatches()) + " "
                                + m.progress().remainingPages() + " " + m.reason().orElse("-").replace('\n', ' ');
                    }
                    case "channel" -> {
                        List<Migration> ms = e.service.migrations();
                        yield ms.isEmpty() || !(ms.get(ms.size() - 1) instanceof IncomingMigration im) ? "NONE"
                                : im.postcopyChannel().orElse("NONE");
                    }
                    case "verify" -> {
                        VerifyResult r = Workload.verify(e.registry.byName("pc.ram"), Long.parseLong(a[1]));
                        yield r.pages() + " " + r.mismatched() + " " + r.zeroPages() + " " + r.filledPages() + " " + r.writtenPages();
                    }
                    case "cancel" -> {
                        MigrationState s = null;
                        for (Migration m : e.service.migrations()) {
                            m.cancel();
                            s = m.awaitCompletion(Duration.ofSeconds(20));
                        }
                        yield String.valueOf(s);
                    }
                    case "exit" -> "bye";
                    default -> "error unknown command " + a[0];
                };
            } catch (RuntimeException | InterruptedException ex) {
                answer = "error " + ex;
            }
            if (answer.equals("bye")) {
                Workload w = reader.get();
                if (w != null) w.stop();
                e.close();
                e.service.close();
                out.println("@@ bye");
                System.exit(0);
            }
            out.println("@@ " + answer);
        }
        System.exit(0);
    }
}
