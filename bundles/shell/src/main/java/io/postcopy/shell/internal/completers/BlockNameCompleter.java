package io.postcopy.shell.internal.completers;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import java.util.List;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;

/** Completes the names of the RAM blocks in the registry. */
@Service
public class BlockNameCompleter implements Completer {

    @Reference
    RamBlockRegistry registry;

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        StringsCompleter delegate = new StringsCompleter();
        for (RamBlock b : registry.blocks()) delegate.getStrings().add(b.idstr());
        return delegate.complete(session, commandLine, candidates);
    }
}
