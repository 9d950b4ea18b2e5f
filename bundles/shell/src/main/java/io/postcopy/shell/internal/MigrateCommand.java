package io.postcopy.shell.internal;

import io.postcopy.migration.GuestControl;
import io.postcopy.migration.MigrationMode;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.migration.OutgoingOptions;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.shell.internal.completers.BlockNameCompleter;
import io.postcopy.shell.internal.completers.PatternCompleter;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.WorkloadService;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** Starts an outgoing migration (the source side). */
@Command(scope = "postcopy", name = "migrate",
        description = "Migrates the --blocks (or --all-blocks) to HOST:PORT (a postcopy:listen there): hybrid by default "
                + "(precopy while the guest runs, postcopy after at most 30s), --postcopy-now, or --precopy-only")
@Service
public class MigrateCommand extends MigrationCommandSupport {

    @Argument(index = 0, name = "target", required = true, description = "HOST:PORT of the destination's listener")
    String target;

    @Option(name = "--blocks", aliases = "-b", multiValued = true,
            description = "Blocks to migrate, comma separated or repeated (this or --all-blocks is required)")
    @Completion(BlockNameCompleter.class)
    List<String> blocks;

    @Option(name = "--all-blocks", description = "Migrate every block in the registry (instead of --blocks)")
    boolean allBlocks;

    @Option(name = "--postcopy-after", aliases = "-a",
            description = "Hybrid (the default mode): switch to postcopy at the latest this long after the migration "
                    + "started (500ms, 2s, 1m; default " + DEFAULT_POSTCOPY_AFTER + "), cutting the precopy pass short. "
                    + "An upper bound: the switch comes earlier when a whole pass leaves no fewer dirty pages than the one "
                    + "before (precopy converged: an idle guest switches after its second pass, with little or nothing "
                    + "left for postcopy), after 30 passes, or on postcopy:start-postcopy. A hybrid migration always "
                    + "ends through the switch")
    String postcopyAfter;

    @Option(name = "--hybrid", description = "Hybrid without a time bound: precopy until postcopy:start-postcopy, the "
            + "dirty set stops shrinking or 30 passes")
    boolean hybrid;

    @Option(name = "--postcopy-now", description = "Pure postcopy: pause the guest at once and let the destination run "
            + "it while the pages follow (no precopy)")
    boolean postcopyNow;

    @Option(name = "--precopy-only", description = "Precopy only: iterate, pause the guest, send the rest; no postcopy")
    boolean precopyOnly;

    @Option(name = "--no-preempt",
            description = "Send requested pages on the main connection instead of a postcopy-preempt channel "
                    + "(for a destination that does not accept one, e.g. QEMU without the capability)")
    boolean noPreempt;

    @Option(name = "--max-bandwidth",
            description = "Bytes per second the main stream may carry (e.g. 500M), requested pages never held back; "
                    + "leaves CPU and network to the guest at the cost of a longer migration (default: no limit)")
    String maxBandwidth;

    @Option(name = "--prefetch",
            description = "Postcopy: after a requested page, push up to N pages (4 KiB) that follow it while the guest "
                    + "is learned to read on (per RAM block; random reading pushes nothing); 0 = off (default: the "
                    + "service's prefetchMaxPages)")
    Integer prefetch;

    @Option(name = "--tls-creds",
            description = "TLS with this QEMU-style credentials directory (ca-cert.pem, client-cert.pem, client-key.pem): "
                    + "the destination must present a certificate from that CA naming HOST (or --tls-hostname)")
    String tlsCreds;

    @Option(name = "--tls-hostname", description = "The name the destination's certificate must carry (default: HOST)")
    String tlsHostname;

    @Option(name = "--workload", aliases = "-w",
            description = "Start a writing workload of this pattern (sequential, uniform, hotset) on each block "
                    + "first; workloads on the blocks are paused at the switch")
    @Completion(PatternCompleter.class)
    String workload;

    @Option(name = "--wait", description = "Return only when the migration has ended; the command fails (non-zero exit) "
            + "unless it COMPLETED (--watch does the same and shows the progress)")
    boolean waitForEnd;

    /** Hybrid's default bound on precopy: long enough for a few passes over tens of GiB, short enough to finish. */
    static final String DEFAULT_POSTCOPY_AFTER = "30s";

    @Option(name = "--watch", description = "Show the migration's progress (a line every --interval, as postcopy:status "
            + "--watch) until it ends, then its status; the command fails (non-zero exit) unless it COMPLETED")
    boolean watch;

    @Option(name = "--interval", aliases = "-i", description = "--watch: time between lines (default 500ms)")
    String interval = "500ms";

    @Reference
    WorkloadService workloads;

    @Override
    protected Object run() throws InterruptedException {
        int modes = (precopyOnly ? 1 : 0) + (postcopyNow ? 1 : 0) + (hybrid ? 1 : 0) + (postcopyAfter != null ? 1 : 0);
        if (modes > 1)
            throw new IllegalArgumentException("--postcopy-now, --postcopy-after, --hybrid and --precopy-only exclude "
                    + "each other: give at most one");
        var address = hostPort(target);
        long every = duration(interval).toMillis();
        if (every < 50) throw new IllegalArgumentException("interval " + interval + " is below 50ms");
        OutgoingOptions o = OutgoingOptions.defaults().withPostcopyPreempt(!noPreempt);
        if (tlsHostname != null && tlsCreds == null) throw new IllegalArgumentException("--tls-hostname needs --tls-creds");
        if (tlsCreds != null) {
            o = o.withTls(io.postcopy.migration.TlsOptions.of(resolve(tlsCreds)).withHostname(tlsHostname));
        }
        if (maxBandwidth != null) o = o.withMaxBandwidth(Sizes.parse("--max-bandwidth", maxBandwidth));
        if (prefetch != null) {
            if (prefetch < 0 || prefetch > OutgoingOptions.MAX_PREFETCH_PAGES)
                throw new IllegalArgumentException("--prefetch " + prefetch + " not in 0.." + OutgoingOptions.MAX_PREFETCH_PAGES);
            o = o.withPrefetchMaxPages(prefetch);
        }
        String after = postcopyAfter != null ? postcopyAfter : DEFAULT_POSTCOPY_AFTER;
        if (precopyOnly) o = o.withMode(MigrationMode.PRECOPY_ONLY);
        else if (postcopyNow) o = o.withMode(MigrationMode.POSTCOPY);
        else if (hybrid) o = o.withMode(MigrationMode.HYBRID);
        else o = o.withMode(MigrationMode.HYBRID).withPostcopyAfter(duration(after));
        List<String> names = new ArrayList<>();
        if (blocks != null) for (String b : blocks) for (String n : b.split(",")) if (!n.isBlank()) names.add(n.trim());
        // every block by default once moved a scratch block or a second guest's RAM along: the operator names them
        if (allBlocks && !names.isEmpty()) throw new IllegalArgumentException("--all-blocks excludes --blocks");
        if (!allBlocks && names.isEmpty())
            throw new IllegalArgumentException("name the blocks to migrate: --blocks NAME[,NAME...] or --all-blocks "
                    + "(postcopy:blocks lists them)");
        if (allBlocks) for (RamBlock b : registry.blocks()) names.add(b.idstr());
        if (names.isEmpty()) throw new IllegalArgumentException("no RAM blocks to migrate (postcopy:block-create makes one)");
        long bytes = 0;
        for (String n : names) bytes += block(n).usedLength();
        if (workload != null) {
            WorkloadOptions wo = WorkloadOptions.builder().threads(1).pattern(WorkloadCommand.pattern(workload))
                    .writeFraction(0.3).build();
            for (String n : names) if (workloads.get(n) == null) workloads.start(n, wo);
        }
        List<String> guestBlocks = List.copyOf(names);
        GuestControl guest = GuestControl.of(() -> {
            for (String n : guestBlocks) {
                Workload w = workloads.get(n);
                if (w != null) w.pause();
            }
        }, () -> {
            for (String n : guestBlocks) {
                Workload w = workloads.get(n);
                if (w != null) w.resume();
            }
        });
        OutgoingMigration m = migrations.migrate(address, o.withBlocks(names.toArray(new String[0])).withGuest(guest));
        String mode = switch (o.mode()) {
            case POSTCOPY -> "postcopy";
            case HYBRID -> "hybrid" + (o.postcopyAfter() != null ? ", postcopy after at most " + after
                    : " (start-postcopy switches)");
            case PRECOPY_ONLY -> "precopy only";
        };
        // fail fast: return once the destination has answered (SETUP left), or say why it could not be reached;
        // a peer that accepts and stays silent is left to status after 10 s
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (m.state() == MigrationState.SETUP && System.nanoTime() < deadline) Thread.sleep(2);
        if (m.state().isFinal() && m.state() != MigrationState.COMPLETED)
            throw new IllegalStateException("migration " + m.id() + " to " + target + " " + m.state() + ": "
                    + m.failure().orElse(m.reason().orElse("?")));
        CheckCommand.wrap(out(), "Started ", "migration " + m.id() + " to " + target + ": " + Text.count(names.size(), "block") + ", "
                + Sizes.human(bytes) + ", " + mode.toLowerCase(Locale.ROOT)
                + (o.maxBandwidth() > 0 ? ", at most " + Sizes.human(o.maxBandwidth()) + "/s" : "")
                + (m.state() == MigrationState.SETUP ? " (no answer from the destination yet: postcopy:status " + m.id()
                        + " follows it)" : ""));
        if (watch) {
            // the migration's first screens: a second client's status --watch may connect after a small one ended
            if (!StatusCommand.watch(out(), () -> List.<io.postcopy.migration.Migration>of(m), every))
                throw new IllegalStateException("stopped watching; migration " + m.id() + " goes on (postcopy:status "
                        + m.id() + " follows it)");
            MigrationReport.detail(out(), m);
        }
        if (waitForEnd || watch) {
            MigrationState end = m.awaitCompletion(java.time.Duration.ofDays(365));
            if (end != MigrationState.COMPLETED)
                throw new IllegalStateException("migration " + m.id() + " " + end + ": " + m.failure().orElse(m.reason().orElse("?")));
            out().println("Migration " + m.id() + " COMPLETED");
        }
        return null;
    }
}
