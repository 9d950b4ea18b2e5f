package io.postcopy.shell.internal;

import io.postcopy.uffd.HostSupportProbe;
import io.postcopy.uffd.HostSupportReport;
import io.postcopy.uffd.UffdFeature;
import io.postcopy.uffd.UffdIoctl;
import java.io.PrintStream;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;

/** The host-support report (the seed's {@code postcopy_ram_supported_by_host}), check by check. */
@Command(scope = "postcopy", name = "check",
        description = "Checks whether this host can be a postcopy destination: each check with its result, and the fix for each failure")
@Service
public class CheckCommand extends PostcopyCommandSupport {

    @Option(name = "--page-size", aliases = "-p", description = "Target page size to check for (e.g. 4K); default 4K")
    String pageSize = "4K";

    @Reference
    HostSupportProbe probe;

    @Reference(optional = true)
    io.postcopy.migration.MigrationService migrations;

    @Override
    protected Object doExecute() {
        long target = Sizes.parse("page size", pageSize);
        HostSupportReport r = probe.probe(target);
        PrintStream out = out();

        ShellTable table = new ShellTable().size(WIDTH).forceAscii();
        table.column("Check").maxSize(24);
        table.column("Result");
        table.column("Required");
        table.column("Detail").wrap();
        for (HostSupportReport.Check c : r.checks()) {
            table.addRow().addContent(c.name(), c.passed() ? "PASS" : "FAIL", c.mandatory() ? "yes" : "no", c.detail());
        }
        table.print(out);

        boolean anyFix = false;
        for (HostSupportReport.Check c : r.checks()) {
            if (!c.passed() && c.fix() != null) {
                if (!anyFix) out.println("Fixes:");
                anyFix = true;
                wrap(out, "  " + c.name() + ": ", c.fix());
            }
        }

        out.println((r.supported() ? "Postcopy is supported" : "Postcopy is NOT supported") + " on this host"
                + " (target page " + Sizes.exact(r.targetPageSize()) + ", host page " + Sizes.exact(r.hostPageSize())
                + ", huge page " + (r.hugePageSize() > 0 ? Sizes.exact(r.hugePageSize()) : "none") + ")");
        wrap(out, "Features: ", r.features().isEmpty() ? "none (no userfaultfd)"
                : r.features().stream().map(UffdFeature::name).collect(Collectors.joining(" ")));
        for (Map.Entry<String, Set<UffdIoctl>> e : r.ioctlsByBacking().entrySet()) {
            wrap(out, "ioctls (" + e.getKey() + "): ",
                    e.getValue().stream().map(UffdIoctl::name).collect(Collectors.joining(" ")));
        }
        if (migrations != null) wrap(out, "TLS records: ", migrations.tlsEngine());
        return null;
    }

    /** Prints {@code head + text}, wrapping words at {@link #WIDTH} with continuation lines indented. */
    static void wrap(PrintStream out, String head, String text) {
        String indent = " ".repeat(Math.min(head.length(), 24));
        StringBuilder line = new StringBuilder(head);
        boolean first = true;
        for (String word : text.split(" ")) {
            if (!first && line.length() + 1 + word.length() > WIDTH) {
                out.println(line);
                line = new StringBuilder(indent).append(word);
            } else {
                if (!first) line.append(' ');
                line.append(word);
            }
            first = false;
        }
        out.println(line);
    }
}
