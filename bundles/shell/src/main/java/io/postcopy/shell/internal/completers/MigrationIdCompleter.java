package io.postcopy.shell.internal.completers;

import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationService;
import java.util.List;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;

/** Completes the ids of the migrations the migration service knows ({@code out-N}, {@code in-N}). */
@Service
public class MigrationIdCompleter implements Completer {

    @Reference
    MigrationService migrations;

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        StringsCompleter delegate = new StringsCompleter();
        for (Migration m : migrations.migrations()) delegate.getStrings().add(m.id());
        return delegate.complete(session, commandLine, candidates);
    }
}
