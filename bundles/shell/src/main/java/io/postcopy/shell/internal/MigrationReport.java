package io.postcopy.shell.internal;

import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.LatencySummary;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.OutgoingMigration;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.apache.karaf.shell.support.table.ShellTable;

/** How the shell prints migrations: the table of all, one migration in detail, the progress bar. */
final class MigrationReport {
    private static final int BAR = 40;

    private MigrationReport() {}

    static String direction(Migration m) {
        return m instanceof OutgoingMigration ? "out" : m instanceof IncomingMigration ? "in" : "?";
    }

    /** The peer as an operator writes it: no resolver's slash ({@code /127.0.0.1:4444}), no {@code 0:0:0:...}. */
    static String peer(Migration m) {
        return Text.address(m.peer());
    }

    /** {@code /127.0.0.1:50078, 12 pages, ...} (the preempt channel's description) with its address as {@link #peer}. */
    static String leadingAddress(String text) {
        int comma = text.indexOf(',');
        String head = comma < 0 ? text : text.substring(0, comma);
        return head.contains(" ") ? text : Text.address(head) + (comma < 0 ? "" : text.substring(comma));
    }

    static double percent(MigrationProgress p) {
        if (p.totalPages() <= 0) return 0;
        return 100.0 * (p.totalPages() - p.remainingPages()) / p.totalPages();
    }

    /** {@code [#####.....]  45.2%}. */
    static String bar(MigrationProgress p, int width) {
        double pct = percent(p);
        int filled = (int) Math.round(pct / 100 * width);
        return "[" + "#".repeat(filled) + ".".repeat(width - filled) + "] "
                + String.format(Locale.ROOT, "%5.1f%%", pct);
    }

    static String throughput(MigrationProgress p) {
        double b = p.throughput();
        if (b >= 1e9) return String.format(Locale.ROOT, "%.2f GB/s", b / 1e9);
        return String.format(Locale.ROOT, "%.1f MB/s", b / 1e6);
    }

    static String ms(double micros) {
        return micros >= 1000 ? String.format(Locale.ROOT, "%.1f ms", micros / 1000)
                : String.format(Locale.ROOT, "%.0f us", micros);
    }

    static void table(PrintStream out, List<Migration> all) {
        // snapshot the rows once; the Why column (wrapped) gets what the others leave of 100 columns: ids, peers and
        // byte counts vary in width
        List<Object[]> rows = new java.util.ArrayList<>();
        for (Migration m : all) {
            MigrationProgress p = m.progress();
            rows.add(new Object[] {m.id(), direction(m), peer(m), m.state(),
                    String.format(Locale.ROOT, "%.1f%%", percent(p)), Sizes.human(p.bytes()), throughput(p),
                    m.reason().orElse("-")});
        }
        String text = "";
        for (int why = 40; why >= 3; why--) {
            ShellTable table = new ShellTable().forceAscii().emptyTableText("no migrations");
            table.column("ID").maxSize(8);
            table.column("Dir");
            table.column("Peer").maxSize(21);
            table.column("State");
            table.column("Progress").alignRight();
            table.column("Bytes").alignRight();
            table.column("Throughput").alignRight();
            table.column("Why").maxSize(why).wrap();
            for (Object[] r : rows) table.addRow().addContent(r);
            java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
            table.print(new PrintStream(b, true, java.nio.charset.StandardCharsets.UTF_8));
            text = b.toString(java.nio.charset.StandardCharsets.UTF_8);
            if (text.lines().allMatch(line -> line.length() <= PostcopyCommandSupport.WIDTH)) break;
        }
        out.print(text);
    }

    static void detail(PrintStream out, Migration m) {
        MigrationProgress p = m.progress();
        boolean in = m instanceof IncomingMigration;
        out.println("Migration  " + m.id() + " (" + (in ? "destination, from " : "source, to ") + peer(m)
                + m.peerId().map(id -> ", peer " + id).orElse("") + "): " + m.state());
        out.println("Progress   " + bar(p, BAR) + "  (" + (p.totalPages() - p.remainingPages()) + " of "
                + Text.count(p.totalPages(), "page") + ")");
        out.println("Bytes      " + Sizes.human(p.bytes()) + (in ? " received" : " sent") + ": " + p.pages()
                + (p.pages() == 1 ? " page, " : " pages, ") + Text.count(p.zeroPages(), "zero page")
                + (in ? "" : ", " + Text.count(p.iterations(), "precopy pass") + ", " + p.dirtyPages() + " dirty at the last scan"));
        out.println("Throughput " + throughput(p) + (p.postcopyNanos() > 0
                ? String.format(Locale.ROOT, " (postcopy, %.1f s)", p.postcopyNanos() / 1e9) : ""));
        Optional<FaultStatistics> stats = m.statistics();
        if (stats.isPresent()) {
            FaultStatistics s = stats.get();
            LatencySummary l = s.latency();
            out.println("Faults     " + s.faults() + " (" + s.requests() + " requested, "
                    + (s.dedupReceived() + s.dedupRequested()) + " de-duplicated)");
            out.println("Requests   " + p.requests() + " sent");
            out.println("Discards   " + Text.count(p.discardRanges(), "range") + ", " + Sizes.human(s.discardedBytes()));
            out.println("Latency    p50 " + ms(l.p50()) + ", p99 " + ms(l.p99()) + ", max " + ms(l.max())
                    + " (fault to placement, " + Text.count(l.count(), "fault") + ")");
            out.println("Blocktime  " + ms(s.blocktimeMicros()) + " in total, " + s.blocktimeByThread().size()
                    + (s.blocktimeByThread().size() == 1 ? " thread" : " threads"));
        } else {
            out.println("Faults     " + (in ? "- (not listening yet)" : "- (the destination's)"));
            out.println("Requests   " + p.requests() + (in ? " sent" : " received, " + Text.count(p.requestedPages(), "page")
                    + " served out of order" + (p.prefetchedPages() > 0 ? " (" + p.prefetchedPages() + " pushed by prefetch)" : "")));
            out.println("Discards   " + Text.count(p.discardRanges(), "range"));
            out.println("Latency    -");
            out.println("Blocktime  -");
        }
        if (in) {
            List<IncomingMigration.OpaqueSection> opaque = ((IncomingMigration) m).opaqueSections();
            StringBuilder sb = new StringBuilder();
            for (IncomingMigration.OpaqueSection o : opaque) {
                if (sb.length() > 0) sb.append(", ");
                sb.append(o.idstr()).append('/').append(o.instanceId()).append(" v").append(o.versionId())
                        .append(' ').append(o.bytes().length).append(" B");
            }
            CheckCommand.wrap(out, "Devices    ", p.deviceSections() + " loaded, " + opaque.size() + " opaque"
                    + (opaque.isEmpty() ? "" : ": " + sb));
            out.println("Preempt    " + ((IncomingMigration) m).postcopyChannel().map(MigrationReport::leadingAddress)
                    .orElse("- (no postcopy-preempt channel)"));
            ((IncomingMigration) m).missing().filter(x -> x.totalBytes() > 0).ifPresent(x -> out.println("Missing    " + x.totalBytes() + " bytes in "
                    + Text.count(x.ranges().size(), "range") + " never received"));
        } else {
            out.println("Devices    " + p.deviceSections() + " saved");
            io.postcopy.migration.OutgoingOptions o = ((io.postcopy.migration.OutgoingMigration) m).options();
            out.println("Preempt    " + (o.postcopyPreempt() ? "requested pages on a postcopy-preempt channel" : "off"));
            if (o.maxBandwidth() > 0) out.println("Bandwidth  at most " + Sizes.human(o.maxBandwidth()) + "/s (background pages)");
            ((io.postcopy.migration.OutgoingMigration) m).downtime().ifPresent(d -> out.println("Downtime   "
                    + ms(d.toNanos() / 1000.0) + " (guest paused on the source until the destination ran its own)"));
            ((io.postcopy.migration.OutgoingMigration) m).downtimeToPackageSent().ifPresent(d -> out.println("           "
                    + ms(d.toNanos() / 1000.0) + " until the package was sent (QEMU's measure)"));
        }
        m.failure().ifPresent(f -> CheckCommand.wrap(out, "Failure    ", f));
        if (!m.state().isFinal()) m.reason().ifPresent(r -> CheckCommand.wrap(out, "Why        ", r));
    }
}
