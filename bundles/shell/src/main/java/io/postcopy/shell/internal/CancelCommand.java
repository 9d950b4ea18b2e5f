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
                    out().println("Closed listener " + id + " (" + Text.count(l.migrations().size(), "migration")
                            + " accepted; running ones go on)");
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
        boolean postcopy = was == MigrationState.POSTCOPY || was == MigrationState.POSTCOPY_PAUSED
                || was == MigrationState.POSTCOPY_RECOVER;
        if (postcopy && m instanceof io.postcopy.migration.OutgoingMigration) {
            out().println("Postcopy cannot be rolled back. Kept here: the guest, paused, and all of its RAM");
            out().println("(its only complete copy): resume the guest on this side; the destination's is incomplete");
        } else if (postcopy && m instanceof io.postcopy.migration.IncomingMigration in) {
            out().println("Postcopy cannot be rolled back: the source kept the guest paused and all of its RAM");
            in.missing().ifPresent(mp -> {
                out().println("Never arrived here: " + mp.totalBytes() + " bytes in " + mp.ranges().size()
                        + (mp.ranges().size() == 1 ? " range" : " ranges") + (mp.ranges().isEmpty() ? "" : ", first:"));
                mp.ranges().stream().limit(5).forEach(r -> out().println("  " + r.idstr() + " 0x" + Long.toHexString(r.offset())
                        + " +0x" + Long.toHexString(r.length())));
                if (mp.ranges().size() > 5) out().println("  ... (postcopy:status " + id + " lists them)");
            });
        }
        return null;
    }
}
