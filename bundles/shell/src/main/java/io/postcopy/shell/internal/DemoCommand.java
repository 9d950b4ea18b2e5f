package io.postcopy.shell.internal;

import io.postcopy.fault.FaultStatistics;
import io.postcopy.migration.GuestControl;
import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationMode;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.migration.OutgoingOptions;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.AccessPattern;
import io.postcopy.workload.DigestComparison;
import io.postcopy.workload.LatencySummary;
import io.postcopy.workload.PageDigest;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.Workloads;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.completers.StringsCompleter;

/**
 * A complete, real migration inside this container over 127.0.0.1: a source block filled with known content
 * and written by a workload, a listener creating the destination block under the prefix {@code demo-dst/},
 * a reading workload on the destination from RUN (its misses are userfaultfd faults served by page requests),
 * and at the end a page-by-page comparison of the source as it was at the switch (its workload stays paused
 * from the switch on) with the destination.
 */
@Command(scope = "postcopy", name = "demo",
        description = "Runs a real local migration (source and destination in this container over 127.0.0.1, "
                + "workloads on both sides) and verifies every page")
@Service
public class DemoCommand extends MigrationCommandSupport {
    static final String SOURCE = "demo-ram";
    static final String PREFIX = "demo-dst/";
    private static final long SEED = 42;

    @Argument(index = 0, name = "size", required = false, description = "Size of the migrated block (default 256M)")
    String size = "256M";

    @Option(name = "--mode", aliases = "-m",
            description = "hybrid (default: one precopy pass of at most --precopy-time, then postcopy) or postcopy (at once)")
    @Completion(value = StringsCompleter.class, values = {"hybrid", "postcopy"})
    String mode = "hybrid";

    @Option(name = "--precopy-time", description = "hybrid: cut the precopy pass short after this long (default 1500ms)")
    String precopyTime = "1500ms";

    @Option(name = "--timeout", description = "Give up (cancel) after this long (default 10m)")
    String timeout = "10m";

    @Override
    protected Object run() throws Exception {
        PrintStream out = out();
        long bytes = Sizes.parse("SIZE", size);
        if (bytes % Workload.PAGE_SIZE != 0) throw new IllegalArgumentException("SIZE " + size + " is not a multiple of 4K");
        MigrationMode m = switch (mode.toLowerCase(Locale.ROOT)) {
            case "hybrid" -> MigrationMode.HYBRID;
            case "postcopy" -> MigrationMode.POSTCOPY;
            default -> throw new IllegalArgumentException("mode \"" + mode + "\" is not hybrid or postcopy");
        };
        Duration precopy = duration(precopyTime);
        Duration limit = duration(timeout);
        String dstName = PREFIX + SOURCE;
        for (String n : new String[] {SOURCE, dstName})
            if (registry.byName(n) != null)
                throw new IllegalStateException("block " + n + " exists (another demo runs, or remove it with "
                        + "postcopy:block-remove " + n + ")");

        RamBlock src = registry.create(SOURCE, bytes, RamBlock.Backing.ANONYMOUS);
        Workload srcLoad = null;
        AtomicReference<Workload> dstLoad = new AtomicReference<>();
        IncomingListener listener = null;
        OutgoingMigration outgoing = null;
        try {
            long t0 = System.nanoTime();
            Workload.fill(src, SEED);
            out.printf(Locale.ROOT, "Source block %s: %s, %d pages filled with content seed %d (%.1f s)%n", SOURCE,
                    Sizes.exact(bytes), bytes / Workload.PAGE_SIZE, SEED, (System.nanoTime() - t0) / 1e9);
            srcLoad = Workloads.start(src, WorkloadOptions.builder().threads(1).pattern(AccessPattern.HOTSET)
                    .writeFraction(0.5).contentSeed(SEED).randomSeed(1).build());
            out.println("Source workload: 1 thread, hot set, half of the accesses write (the guest; paused at the switch)");

            WorkloadOptions reader = WorkloadOptions.builder().threads(1).pattern(AccessPattern.HOTSET)
                    .writeFraction(0).checkReads(true).randomSeed(2).build();
            // the destination's guest: started at RUN; on a failure asked to pause before its reads can wake
            listener = migrations.listen(new InetSocketAddress("127.0.0.1", 0), IncomingOptions.defaults()
                    .withBlockPrefix(PREFIX).withGuest(GuestControl.of(() -> {
                        Workload w = dstLoad.get();
                        if (w != null) w.requestPause();
                    }, () -> {
                        Workload w = dstLoad.get();
                        if (w != null) w.pause();
                    }, () -> {
                        RamBlock d = registry.byName(dstName);
                        if (d != null && dstLoad.get() == null) dstLoad.set(Workloads.start(d, reader));
                    })));
            out.println("Destination: listening on 127.0.0.1:" + listener.port() + ", block prefix " + PREFIX
                    + ", reader of the hot set at RUN");

            Workload guest = srcLoad;
            AtomicLong switchNanos = new AtomicLong();
            OutgoingOptions o = OutgoingOptions.defaults().withBlocks(SOURCE).withMode(m)
                    .withGuest(GuestControl.of(() -> {
                        guest.pause();
                        switchNanos.compareAndSet(0, System.nanoTime());
                    }, guest::resume));
            // one precopy pass at most (cut short after --precopy-time): the pages the guest wrote meanwhile are
            // discarded at the switch and come back in postcopy, where the destination's reader faults on them
            if (m == MigrationMode.HYBRID) o = o.withPostcopyAfter(precopy).withMaxIterations(1);
            long start = System.nanoTime();
            outgoing = migrations.migrate(new InetSocketAddress("127.0.0.1", listener.port()), o);
            out.println("Migrating " + SOURCE + " -> " + dstName + " as " + outgoing.id() + ", "
                    + (m == MigrationMode.HYBRID ? "hybrid: 1 precopy pass (<= " + precopyTime + "), then postcopy"
                    : "pure postcopy"));

            IncomingMigration incoming = null;
            long deadline = start + limit.toNanos();
            while (true) {
                if (incoming == null && !listener.migrations().isEmpty()) incoming = listener.migrations().get(0);
                boolean done = outgoing.state().isFinal() && (incoming == null || incoming.state().isFinal());
                Migration shown = incoming != null && incoming.state() == MigrationState.POSTCOPY ? incoming : outgoing;
                out.println(StatusCommand.line((System.nanoTime() - start) / 1e9, shown));
                out.flush();
                if (done) break;
                if (System.nanoTime() > deadline) {
                    outgoing.cancel();
                    if (incoming != null) incoming.cancel();
                    throw new IllegalStateException("the demo migration did not end within " + timeout + "; cancelled");
                }
                if (outgoing.state().isFinal() && incoming != null) incoming.awaitCompletion(Duration.ofMillis(500));
                else outgoing.awaitCompletion(Duration.ofMillis(500));
            }
            long end = System.nanoTime();
            if (outgoing.state() != MigrationState.COMPLETED || incoming == null
                    || incoming.state() != MigrationState.COMPLETED) {
                throw new IllegalStateException("the demo migration failed: source " + outgoing.state()
                        + outgoing.failure().map(f -> " (" + f + ")").orElse("") + ", destination "
                        + (incoming == null ? "never connected" : incoming.state()
                        + incoming.failure().map(f -> " (" + f + ")").orElse("")));
            }

            // The source's guest stays paused from the switch on, so its memory now is its memory at the switch.
            Workload dl = dstLoad.get();
            if (dl != null) dl.stop();
            RamBlock dst = registry.byName(dstName);
            DigestComparison cmp = PageDigest.compare(PageDigest.of(src), PageDigest.of(dst));

            MigrationProgress sp = outgoing.progress();
            MigrationProgress dp = incoming.progress();
            FaultStatistics fs = incoming.statistics().orElse(null);
            long sw = switchNanos.get();
            out.println();
            out.println("Demo summary: " + m.name().toLowerCase(Locale.ROOT) + " migration of " + Sizes.exact(bytes)
                    + " over 127.0.0.1 (" + outgoing.id() + " -> " + incoming.id() + ")");
            out.printf(Locale.ROOT, "  Result          COMPLETED in %.2f s (precopy %.2f s, %s; postcopy %.2f s)%n",
                    (end - start) / 1e9, sw == 0 ? 0 : (sw - start) / 1e9, Text.count(sp.iterations(), "pass"), dp.postcopyNanos() / 1e9);
            outgoing.downtime().ifPresent(d -> out.printf(Locale.ROOT, "  Downtime        %s (the source's guest paused until the%n"
                    + "                  destination's could run)%n", MigrationReport.ms(d.toNanos() / 1000.0)));
            out.printf(Locale.ROOT, "  Pages verified  %d, %d mismatched (SHA-256 of each 4 KiB page: source at the%n"
                    + "                  switch vs destination at the end)%s%n", cmp.pages(), cmp.mismatched(),
                    cmp.equal() ? "" : "; first mismatch at page " + cmp.firstMismatch());
            out.printf(Locale.ROOT, "  Transferred     %s: %s, %s; %s after the switch%n",
                    Sizes.human(sp.bytes()), Text.count(sp.pages(), "page"), Text.count(sp.zeroPages(), "zero page"),
                    Text.count(sp.postcopyPageBytes() / Workload.PAGE_SIZE, "page"));
            out.printf(Locale.ROOT, "  Throughput      %s during postcopy, %.1f MB/s overall (precopy shares the%n"
                    + "                  CPU with the writing workload)%n",
                    MigrationReport.throughput(dp), sp.bytes() / ((end - start) / 1e9) / 1e6);
            if (fs != null) {
                out.printf(Locale.ROOT, "  Faults          %d (%d requested, %d de-duplicated)%n", fs.faults(),
                        fs.requests(), fs.dedupReceived() + fs.dedupRequested());
                out.printf(Locale.ROOT, "  Requests        %d sent by the destination, %s served out of order%n",
                        dp.requests(), Text.count(sp.requestedPages(), "page"));
                out.printf(Locale.ROOT, "  Discards        %s (%s re-dirtied after precopy)%n",
                        Text.count(fs.discards(), "range"), Sizes.human(fs.discardedBytes()));
                out.println("  Fault latency   p50 " + MigrationReport.ms(fs.latency().p50()) + ", p99 "
                        + MigrationReport.ms(fs.latency().p99()) + ", max " + MigrationReport.ms(fs.latency().max())
                        + " (fault to placement, " + Text.count(fs.latency().count(), "fault") + ")");
                out.println("  Blocktime       " + MigrationReport.ms(fs.blocktimeMicros()) + " (threads blocked on faults)");
            }
            if (dl != null) {
                LatencySummary l = dl.latency();
                // two lines: with a slow read (hundreds of ms) and millions of reads one line passed 100 columns
                out.println("  Reader latency  p50 " + MigrationReport.ms(l.p50Us()) + ", p99 "
                        + MigrationReport.ms(l.p99Us()) + ", max " + MigrationReport.ms(l.maxUs()));
                out.println("  Reader reads    " + Text.count(l.count(), "read") + " on the destination, "
                        + dl.readMismatches() + " inconsistent");
            }
            if (!cmp.equal()) throw new IllegalStateException(cmp.mismatched() + " pages differ between source and destination");
            return null;
        } finally {
            if (listener != null) listener.close();
            // migrations first: a destination reader may be blocked on a page only their end lets go of
            if (outgoing != null && !outgoing.state().isFinal()) {
                outgoing.cancel();
                outgoing.awaitCompletion(Duration.ofSeconds(10));
            }
            if (listener != null)
                for (IncomingMigration in : listener.migrations()) {
                    if (!in.state().isFinal()) in.cancel();
                    in.awaitCompletion(Duration.ofSeconds(10));
                }
            Workload dl = dstLoad.get();
            if (dl != null) dl.stop();
            if (srcLoad != null) srcLoad.stop();
            try {
                if (registry.byName(dstName) != null) registry.remove(dstName);
            } catch (RuntimeException e) {
                out.println("Could not remove " + dstName + ": " + oneLine(e));
            }
            registry.remove(SOURCE);
            out.println("Removed blocks " + SOURCE + " and " + dstName);
        }
    }
}
