package io.postcopy.shell.internal;

import io.postcopy.migration.GuestControl;
import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.shell.internal.completers.PatternCompleter;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.WorkloadService;
import java.net.InetSocketAddress;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** Opens a listener for incoming migrations (the destination side). */
@Command(scope = "postcopy", name = "listen",
        description = "Listens for incoming migrations on PORT (127.0.0.1 unless --bind); each connection becomes "
                + "a migration in-N (postcopy:status)")
@Service
public class ListenCommand extends MigrationCommandSupport {

    @Argument(index = 0, name = "port", required = true, description = "TCP port (0: any free port)")
    String port;

    @Option(name = "--bind", aliases = "-b", description = "Address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    String bind = "127.0.0.1";

    @Option(name = "--qemu-preempt",
            description = "Serve QEMU sources with the postcopy-preempt capability by QEMU's rule: one migration at a "
                    + "time, the connection right after its main one is its channel (our own source needs no option)")
    boolean qemuPreempt;

    @Option(name = "--switchover-ack",
            description = "For QEMU 8.1+ sources with the switchover-ack capability on (they wait for this ACK before "
                    + "switching over); never for a source without it")
    boolean switchoverAck;

    @Option(name = "--tls-creds",
            description = "TLS with this QEMU-style credentials directory (ca-cert.pem, server-cert.pem, server-key.pem): "
                    + "sources must present a certificate from that CA")
    String tlsCreds;

    @Option(name = "--tls-authz", multiValued = true,
            description = "With --tls-creds: accept only client certificates with this subject (e.g. CN=src1,O=example); "
                    + "repeat for several. Default: any certificate the CA signed")
    List<String> tlsAuthz;

    @Option(name = "--insecure",
            description = "Allow --bind to an address other than loopback without TLS: anyone who reaches it can migrate here")
    boolean insecure;

    @Option(name = "--prefix", aliases = "-p",
            description = "Local block name = prefix + the source's block name (default none)")
    String prefix = "";

    @Option(name = "--workload", aliases = "-w",
            description = "At RUN, start a read-only workload of this pattern (sequential, uniform, hotset) on the "
                    + "migrated blocks: the guest stand-in that faults missing pages in")
    @Completion(PatternCompleter.class)
    String workload;

    @Option(name = "--workload-blocks", multiValued = true,
            description = "Only these blocks (the source's names, comma separated or repeated) get a reader; default "
                    + "all (QEMU also sends small ROM blocks: --workload-blocks pc.ram)")
    List<String> workloadBlocks;

    @Option(name = "--no-check",
            description = "Do not check what the reader reads against the workload's page images (for memory our "
                    + "workload did not write, e.g. a QEMU guest's): reads only fault pages in")
    boolean noCheck;

    @Reference
    WorkloadService workloads;

    @Override
    protected Object run() {
        int p = port(port, 0);
        WorkloadOptions wo = workload == null ? null : WorkloadOptions.builder().threads(1)
                .pattern(WorkloadCommand.pattern(workload)).writeFraction(0).checkReads(!noCheck).build();
        Set<String> only = new HashSet<>();
        if (workloadBlocks != null) for (String b : workloadBlocks) for (String n : b.split(",")) if (!n.isBlank()) only.add(prefix + n.trim());
        this.readerBlocks = only;
        AtomicReference<IncomingListener> self = new AtomicReference<>();
        GuestControl guest = GuestControl.of(() -> eachBlock(self.get(), Workload::requestPause),
                () -> eachBlock(self.get(), Workload::pause), () -> resumeEachBlock(self.get(), wo));
        IncomingListener l = migrations.listen(new InetSocketAddress(bind, p),
                IncomingOptions.defaults().withBlockPrefix(prefix).withGuest(guest).withQemuPreempt(qemuPreempt).withSwitchoverAck(switchoverAck)
                        .withInsecure(insecure).withTls(tls()));
        self.set(l);
        out().println("Listening on " + Text.address(l.address()) + " as listen-"
                + l.port() + (prefix.isEmpty() ? "" : ", block prefix \"" + prefix + "\"")
                + (workload == null ? "" : ", " + workload.toLowerCase(Locale.ROOT) + " reader at RUN"
                        + (readerBlocks.isEmpty() ? "" : " on " + String.join(", ", new java.util.TreeSet<>(readerBlocks)))
                        + (noCheck ? ", reads not checked" : "")));
        if (tlsCreds != null) {
            out().println("TLS: sources must present a certificate from the CA in");
            out().println("  " + resolve(tlsCreds).resolve("ca-cert.pem"));
            if (tlsAuthz != null) out().println("  with subject " + String.join(" or ", tlsAuthz));
        }
        if (qemuPreempt)
            out().println("QEMU's postcopy-preempt rule: one migration at a time, the connection after its main one is its channel");
        out().println("Migrations appear as in-N in postcopy:status; postcopy:cancel listen-" + l.port()
                + " closes it");
        return null;
    }

    private Set<String> readerBlocks = Set.of();

    private io.postcopy.migration.TlsOptions tls() {
        if (tlsCreds == null) {
            if (tlsAuthz != null) throw new IllegalArgumentException("--tls-authz needs --tls-creds");
            return null;
        }
        return io.postcopy.migration.TlsOptions.of(resolve(tlsCreds)).withAuthorizedSubjects(tlsAuthz == null ? List.of() : tlsAuthz);
    }

    /** The guest of the listener's live migrations: their blocks' workloads, each asked or made to pause. */
    private void eachBlock(IncomingListener l, java.util.function.Consumer<Workload> action) {
        if (l == null) return;
        for (IncomingMigration m : l.migrations()) {
            if (m.state().isFinal()) continue;
            for (RamBlock b : m.blocks()) {
                Workload w = workloads.get(b.idstr());
                if (w != null) action.accept(w);
            }
        }
    }

    /**
     * At RUN: resumes the blocks' workloads, or starts the reader on blocks that have none; readers started here end
     * with their migration.
     */
    private void resumeEachBlock(IncomingListener l, WorkloadOptions startWith) {
        if (l == null) return;
        for (IncomingMigration m : l.migrations()) {
            if (m.state().isFinal()) continue;
            List<Workload> started = new java.util.ArrayList<>();
            for (RamBlock b : m.blocks()) {
                Workload w = workloads.get(b.idstr());
                if (w != null && w.isRunning()) {
                    w.resume();
                } else if (startWith != null && (readerBlocks.isEmpty() || readerBlocks.contains(b.idstr()))) {
                    started.add(workloads.start(b.idstr(), startWith.toBuilder().owner(m.id()).build()));
                }
            }
            if (!started.isEmpty()) stopAtEnd(m, started);
        }
    }

    /**
     * Stops {@code readers} once {@code m} is in a final state, whichever: a reader left running after COMPLETED
     * spun flat out until Karaf stopped (issue 17). Stopped, not forgotten: postcopy:workload list shows what it
     * read. A block removed earlier (a failed migration removes its blocks) has stopped its reader already.
     */
    static void stopAtEnd(io.postcopy.migration.Migration m, List<Workload> readers) {
        Thread t = new Thread(() -> {
            try {
                while (!m.awaitCompletion(java.time.Duration.ofMinutes(10)).isFinal()) {
                    // a long migration: wait on
                }
            } catch (InterruptedException e) {
                // the JVM is going down; the workload service stops every workload then
            }
            for (Workload w : readers) w.stop();
        }, "postcopy-reader-end-" + m.id());
        t.setDaemon(true);
        t.start();
    }
}
