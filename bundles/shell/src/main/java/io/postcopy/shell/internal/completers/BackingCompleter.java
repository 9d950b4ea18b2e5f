package io.postcopy.shell.internal.completers;

import io.postcopy.shell.internal.Backings;
import java.util.List;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;

/** Completes the backing kinds of {@code postcopy:block-create --backing}: anon, memfd, hugetlb. */
@Service
public class BackingCompleter implements Completer {

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        return new StringsCompleter(Backings.NAMES).complete(session, commandLine, candidates);
    }
}
