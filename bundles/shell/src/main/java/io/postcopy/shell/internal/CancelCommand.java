package io.postcopy.shell.internal;

import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationState;
import io.postcopy.shell.internal.completers.MigrationIdCompleter;
import java.time.Duration;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** Cancels a migration, or closes a listener. */
@Command(scope = "postcopy", name = "cancel",
        description = "Cancels a migration (out-N, in-N) at once, or closes a listener (listen-PORT)")
@Service
public class CancelCommand extends MigrationCommandSupport {

    @Argument(index = 0, name = "id", required = true, description = "A migration id, or listen-PORT")
    @Completion(MigrationIdCompleter.class)
    String id;

    @Override
    protected Object run() throws InterruptedException {
        if (id.startsWith("listen-")) {
            for (IncomingListener l : migrations.listeners()) {
                if (id.equals("listen-" + l.port())) {
                    l.close();
                    out().println("Closed listener " + id + " (" + l.migrations().size()
                            + " migration(s) accepted; running ones go on)");
                    return null;
                }
            }
            throw new IllegalArgumentException("no listener \"" + id + "\" (postcopy:status lists them)");
        }
        Migration m = migration(id);
        MigrationState was = m.state();
        if (was.isFinal()) throw new IllegalStateException("migration " + id + " has ended already: " + was);
        m.cancel();
        MigrationState now = m.awaitCompletion(Duration.ofSeconds(10));
        out().println("Cancelled migration " + id + " (was " + was + ", now " + now + ")");
        if (was == MigrationState.POSTCOPY)
            out().println("Postcopy cannot be rolled back: pages that never arrived are lost on the destination");
        return null;
    }
}
