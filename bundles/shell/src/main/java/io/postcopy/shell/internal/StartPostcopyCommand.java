package io.postcopy.shell.internal;

import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationMode;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.shell.internal.completers.MigrationIdCompleter;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** Switches a hybrid outgoing migration to postcopy now. */
@Command(scope = "postcopy", name = "start-postcopy",
        description = "Switches a hybrid outgoing migration to postcopy after its current precopy chunk")
@Service
public class StartPostcopyCommand extends MigrationCommandSupport {

    @Argument(index = 0, name = "id", required = true, description = "An outgoing migration (out-N)")
    @Completion(MigrationIdCompleter.class)
    String id;

    @Override
    protected Object run() {
        Migration m = migration(id);
        if (!(m instanceof OutgoingMigration o))
            throw new IllegalArgumentException("migration " + id + " is incoming; start-postcopy is for the source (out-N)");
        if (o.options().mode() != MigrationMode.HYBRID)
            throw new IllegalStateException("migration " + id + " is not hybrid (" + o.options().mode() + ")");
        MigrationState s = o.state();
        if (s.isFinal() || s == MigrationState.POSTCOPY)
            throw new IllegalStateException("migration " + id + " is " + s + " already");
        o.startPostcopy();
        out().println("Migration " + id + ": switching to postcopy after the current precopy chunk (was " + s + ")");
        return null;
    }
}
