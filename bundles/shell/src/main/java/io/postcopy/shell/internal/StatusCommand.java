package io.postcopy.shell.internal;

import io.postcopy.fault.FaultStatistics;
import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.shell.internal.completers.MigrationIdCompleter;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** The migrations: all in a table, or one in detail; {@code --watch} follows them until they end. */
@Command(scope = "postcopy", name = "status",
        description = "Shows the migrations (a table), or one migration in detail: state, progress, bytes, "
                + "throughput, faults, requests, discards, latency, blocktime, device sections")
@Service
public class StatusCommand extends MigrationCommandSupport {

    @Argument(index = 0, name = "id", required = false, description = "A migration (out-N, in-N); default all")
    @Completion(MigrationIdCompleter.class)
    String id;

    @Option(name = "--watch", aliases = "-w",
            description = "Print a progress line every interval until the migration(s) end, then the status")
    boolean watch;

    @Option(name = "--interval", aliases = "-i", description = "--watch: time between lines (default 500ms)")
    String interval = "500ms";

    @Override
    protected Object run() {
        PrintStream out = out();
        long every = duration(interval).toMillis();
        if (every < 50) throw new IllegalArgumentException("interval " + interval + " is below 50ms");
        Migration one = id == null ? null : migration(id);
        if (watch) watch(out, () -> one != null ? List.of(one) : migrations.migrations(), every);
        if (one != null) {
            MigrationReport.detail(out, one);
        } else {
            MigrationReport.table(out, migrations.migrations());
            List<IncomingListener> ls = migrations.listeners();
            if (!ls.isEmpty()) {
                StringBuilder sb = new StringBuilder();
                for (IncomingListener l : ls) {
                    if (sb.length() > 0) sb.append(", ");
                    sb.append("listen-").append(l.port()).append(" on ")
                            .append(Text.address(l.address()))
                            .append(" (").append(l.migrations().size()).append(" accepted")
                            .append(l.options().tls() != null ? ", TLS" : l.address().getAddress().isLoopbackAddress() ? ""
                                    : ", INSECURE: no TLS off loopback").append(")");
                }
                CheckCommand.wrap(out, "Listeners: ", sb.toString());
            }
        }
        return null;
    }

    /**
     * Prints a progress line per live migration every {@code everyMillis} until none of {@code which} is live
     * (also what {@code postcopy:migrate --watch} shows); false when interrupted (Ctrl-C).
     */
    static boolean watch(PrintStream out, java.util.function.Supplier<List<Migration>> which, long everyMillis) {
        long start = System.nanoTime();
        try {
            for (;;) {
                List<Migration> live = new ArrayList<>();
                for (Migration m : which.get()) if (!m.state().isFinal()) live.add(m);
                if (live.isEmpty()) return true;
                double t = (System.nanoTime() - start) / 1e9;
                for (Migration m : live) out.println(line(t, m));
                out.flush();
                Thread.sleep(everyMillis);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            out.println("(stopped watching)");
            return false;
        }
    }

    /** One --watch line, at most 100 columns. */
    static String line(double seconds, Migration m) {
        MigrationProgress p = m.progress();
        FaultStatistics s = m.statistics().orElse(null);
        String tail = s != null ? "faults " + s.faults() : MigrationReport.direction(m).equals("out")
                ? "pass " + p.iterations() + " dirty " + p.dirtyPages() : "";
        return String.format(Locale.ROOT, "%6.1fs %-6s %-9s %s %10s %s", seconds, m.id(), m.state(),
                MigrationReport.bar(p, 24), Sizes.human(p.bytes()), tail).stripTrailing();
    }
}
