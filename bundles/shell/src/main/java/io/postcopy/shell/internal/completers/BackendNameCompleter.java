package io.postcopy.shell.internal.completers;

import io.postcopy.fault.BackendInfo;
import io.postcopy.fault.FaultService;
import java.util.List;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;

/** Completes the names of the placement backends bound to the fault service. */
@Service
public class BackendNameCompleter implements Completer {

    @Reference
    FaultService faultService;

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        StringsCompleter delegate = new StringsCompleter();
        for (BackendInfo b : faultService.backends()) delegate.getStrings().add(b.name());
        return delegate.complete(session, commandLine, candidates);
    }
}
