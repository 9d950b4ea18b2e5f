package io.postcopy.shell.internal;

import io.postcopy.fault.BackendInfo;
import io.postcopy.fault.FaultService;
import io.postcopy.shell.internal.completers.BackendNameCompleter;
import java.util.List;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;

/** The placement backends bound to the fault service, highest ranking first, and the blocks using each. */
@Command(scope = "postcopy", name = "backends",
        description = "Lists the placement backends: name, ranking, supported block kinds, and the blocks using each")
@Service
public class BackendsCommand extends PostcopyCommandSupport {

    @Argument(index = 0, name = "name", required = false, description = "Show only this backend")
    @Completion(BackendNameCompleter.class)
    String name;

    @Reference
    FaultService faultService;

    @Override
    protected Object doExecute() {
        List<BackendInfo> backends = faultService.backends();
        if (name != null && backends.stream().noneMatch(b -> b.name().equals(name)))
            throw new IllegalArgumentException("no placement backend named \"" + name + "\" (bound: "
                    + String.join(", ", backends.stream().map(BackendInfo::name).toList()) + ")");
        ShellTable table = new ShellTable().size(WIDTH).forceAscii().emptyTableText("no placement backends bound");
        table.column("Name").maxSize(16);
        table.column("Ranking").alignRight();
        table.column("Supported kinds").wrap();
        table.column("Blocks in use").wrap();
        for (BackendInfo b : backends) {
            if (name != null && !b.name().equals(name)) continue;
            table.addRow().addContent(b.name(), b.ranking(), b.supportedKinds(),
                    b.blocksInUse().isEmpty() ? "-" : String.join(", ", b.blocksInUse()));
        }
        table.print(out());
        return null;
    }
}
