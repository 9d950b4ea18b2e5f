package io.postcopy.shell.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.shell.internal.completers.BlockNameCompleter;
import io.postcopy.workload.AccessPattern;
import io.postcopy.workload.LatencySummary;
import io.postcopy.workload.VerifyResult;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.WorkloadService;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.completers.StringsCompleter;
import org.apache.karaf.shell.support.table.ShellTable;

/** The guest stand-in on a block: start, stop, verify, fill, list. */
@Command(scope = "postcopy", name = "workload",
        description = "The guest stand-in on a block: start|stop|verify|fill BLOCK, stop --all, or list (what runs, "
                + "on which block, for which migration, since when, reads so far)")
@Service
public class WorkloadCommand extends PostcopyCommandSupport {

    private static final Pattern DURATION = Pattern.compile("([0-9]{1,9})(ms|s|m|h)?");

    @Argument(index = 0, name = "action", required = true,
            description = "start: run vCPU threads on the block; stop: end them (BLOCK, or --all) and print their statistics; "
                    + "verify: check every page's content; fill: write known content (a migration source); list")
    @Completion(value = StringsCompleter.class, values = {"start", "stop", "verify", "fill", "list"})
    String action;

    @Argument(index = 1, name = "block", required = false, description = "The block (all actions but list)")
    @Completion(BlockNameCompleter.class)
    String blockName;

    @Option(name = "--threads", aliases = "-t", description = "start: vCPU threads (1..1024, default 1)")
    int threads = 1;

    @Option(name = "--pattern", aliases = "-p", description = "start: sequential, uniform (default) or hotset")
    @Completion(value = StringsCompleter.class, values = {"sequential", "uniform", "hotset"})
    String pattern = "uniform";

    @Option(name = "--write-fraction", aliases = "-w", description = "start: fraction of accesses that write, 0..1 (default 0)")
    double writeFraction;

    @Option(name = "--duration", aliases = "-d", description = "start: run for this long (500ms, 30s, 5m, 1h; default until stopped)")
    String duration;

    @Option(name = "--rate", description = "start: accesses per second per thread (default flat out)")
    long rate;

    @Option(name = "--seed", description = "start, fill: content seed (default 0)")
    long seed;

    @Option(name = "--check-reads", description = "start: check every page read for consistent content")
    boolean checkReads;

    @Option(name = "--all", aliases = "-a", description = "stop: every workload (running or ended)")
    boolean all;

    @Reference
    WorkloadService workloads;

    @Override
    protected Object doExecute() {
        PrintStream out = out();
        switch (action.toLowerCase(Locale.ROOT)) {
            case "list" -> list(out);
            case "start" -> {
                RamBlock b = block(requireBlock());
                WorkloadOptions.Builder o = WorkloadOptions.builder().threads(threads).pattern(pattern(pattern))
                        .writeFraction(writeFraction).ratePerThread(rate).contentSeed(seed).checkReads(checkReads);
                if (duration != null) o.duration(duration(duration));
                Workload w = workloads.start(b.idstr(), o.build());
                out.println("Started workload on block " + b.idstr() + ": " + Text.count(w.options().threads(), "thread") + ", "
                        + w.options().pattern().name().toLowerCase(Locale.ROOT) + ", write fraction "
                        + w.options().writeFraction() + (duration != null ? ", for " + duration : ", until stopped"));
            }
            case "stop" -> {
                // Karaf takes options only before the arguments: "stop --all" arrives as the block argument
                if ("--all".equals(blockName) || "-a".equals(blockName)) {
                    if (all) throw new IllegalArgumentException("stop takes a BLOCK or --all, not both");
                    all = true;
                    blockName = null;
                }
                if (all && blockName != null) throw new IllegalArgumentException("stop takes a BLOCK or --all, not both");
                if (!all) {
                    stop(out, requireBlock());
                } else {
                    Map<String, Workload> each = workloads.list();
                    if (each.isEmpty()) out.println("No workloads");
                    for (String name : each.keySet()) stop(out, name);
                }
            }
            case "verify" -> {
                String name = requireBlock();
                block(name);
                VerifyResult r = workloads.verify(name);
                out.println((r.ok() ? "OK" : "MISMATCH") + " block " + name + ": " + Text.count(r.pages(), "page") + ", "
                        + r.zeroPages() + " zero, " + r.filledPages() + " filled, " + r.writtenPages() + " written, "
                        + r.mismatched() + " mismatched" + (r.ok() ? "" : " (first at page " + r.firstMismatch() + ")"));
            }
            case "fill" -> {
                RamBlock b = block(requireBlock());
                Workload running = workloads.get(b.idstr());
                if (running != null && running.isRunning())
                    throw new IllegalStateException("a workload runs on block \"" + b.idstr() + "\"; stop it first");
                Workload.fill(b, seed);
                out.println("Filled block " + b.idstr() + ": " + b.usedLength() / Workload.PAGE_SIZE
                        + (b.usedLength() / Workload.PAGE_SIZE == 1 ? " page" : " pages") + " with content seed " + seed);
            }
            default -> throw new IllegalArgumentException("action \"" + action + "\" is not one of start, stop, verify, fill, list");
        }
        return null;
    }

    private void stop(PrintStream out, String name) {
        Workload w = workloads.get(name);
        if (w == null) throw new IllegalArgumentException("no workload on block \"" + name + "\" (postcopy:workload list shows them)");
        workloads.stop(name);
        out.println("Stopped workload on block " + name + ": " + stats(w));
        LatencySummary l = w.latency();
        out.printf(Locale.ROOT, "Access latency: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us (%d accesses)%n",
                l.p50Us(), l.p99Us(), l.p999Us(), l.maxUs(), l.count());
        if (w.failure() != null) out.println("Failed: " + oneLine(w.failure()));
    }

    private void list(PrintStream out) {
        ShellTable table = new ShellTable().forceAscii().emptyTableText("no workloads");
        table.column("Block").maxSize(24);
        table.column("For");
        table.column("State");
        table.column("Since");
        table.column("Threads").alignRight();
        table.column("Pattern");
        table.column("Reads").alignRight();
        table.column("Writes").alignRight();
        table.column("Stalls").alignRight();
        java.time.format.DateTimeFormatter hms = java.time.format.DateTimeFormatter.ofPattern("HH:mm:ss")
                .withZone(java.time.ZoneId.systemDefault());
        for (Map.Entry<String, Workload> e : workloads.list().entrySet()) {
            Workload w = e.getValue();
            String state = w.failure() != null ? "failed" : !w.isRunning() ? "ended" : w.isPaused() ? "paused" : "running";
            String owner = w.options().owner();
            table.addRow().addContent(e.getKey(), owner.isEmpty() ? "-" : owner, state, hms.format(w.startedAt()),
                    w.options().threads(), w.options().pattern().name().toLowerCase(Locale.ROOT), w.reads(), w.writes(),
                    w.stalls());
        }
        table.print(out);
    }

    private static String stats(Workload w) {
        return Text.count(w.reads(), "read") + ", " + Text.count(w.writes(), "write") + ", "
                + Text.count(w.pagesTouched(), "page") + " touched"
                + String.format(Locale.ROOT, "%nStalls: %d over %.1f us", w.stalls(), w.latency().thresholdUs())
                + (w.options().checkReads() ? "; read mismatches: " + w.readMismatches() : "");
    }

    private String requireBlock() {
        if (blockName == null) throw new IllegalArgumentException(action + " needs a BLOCK (postcopy:blocks lists them)");
        return blockName;
    }

    static AccessPattern pattern(String p) {
        try {
            return AccessPattern.valueOf(p.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("pattern \"" + p + "\" is not one of sequential, uniform, hotset");
        }
    }

    static Duration duration(String text) {
        Matcher m = DURATION.matcher(text);
        if (!m.matches())
            throw new IllegalArgumentException("duration \"" + text + "\" is not like 500ms, 30s, 5m or 1h");
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "s" : m.group(2);
        return switch (unit) {
            case "ms" -> Duration.ofMillis(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            default -> Duration.ofSeconds(n);
        };
    }
}
