package io.postcopy.shell.internal;

import io.postcopy.fault.BlockStatistics;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.ramblock.RamBlock;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;

/** The RAM blocks of the registry, with each one's progress while a live incoming migration holds it. */
@Command(scope = "postcopy", name = "blocks",
        description = "Lists the RAM blocks: name, size, page size, backing, host address, and received % during a migration")
@Service
public class BlocksCommand extends PostcopyCommandSupport {

    /** Optional: without the fault service there is simply no migration to report on. */
    @Reference(optional = true)
    FaultService faultService;

    @Override
    protected Object doExecute() {
        Map<String, String> received = new HashMap<>();
        Map<String, String> migration = new HashMap<>();
        if (faultService != null) {
            for (IncomingPostcopy in : faultService.incoming()) {
                for (BlockStatistics s : in.statistics().blocks()) {
                    received.put(s.idstr(), String.format(Locale.ROOT, "%.1f%%", s.receivedPercent()));
                    migration.put(s.idstr(), in.id());
                }
            }
        }
        List<RamBlock> blocks = registry.blocks();
        ShellTable table = new ShellTable().forceAscii().emptyTableText("no RAM blocks");
        table.column("Name").maxSize(20);
        table.column("Size").alignRight();
        table.column("Page").alignRight();
        table.column("Backing");
        table.column("Host address");
        table.column("Received").alignRight();
        table.column("Migration").maxSize(12);
        for (RamBlock b : blocks) {
            table.addRow().addContent(b.idstr(), Sizes.exact(b.usedLength()), Sizes.exact(b.pageSize()),
                    b.backing().name().toLowerCase(Locale.ROOT), String.format("0x%016x", b.hostAddress()),
                    received.getOrDefault(b.idstr(), "-"), migration.getOrDefault(b.idstr(), "-"));
        }
        table.print(out());
        return null;
    }
}
