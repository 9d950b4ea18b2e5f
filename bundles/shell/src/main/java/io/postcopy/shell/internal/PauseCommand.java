package io.postcopy.shell.internal;

import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationState;
import io.postcopy.shell.internal.completers.MigrationIdCompleter;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** QEMU's migrate-pause: closes a postcopy migration's connections, which pauses it on both sides. */
@Command(scope = "postcopy", name = "pause",
        description = "Closes the connections of a migration in POSTCOPY: both sides pause, nothing is lost; "
                + "postcopy:resume on the source goes on")
@Service
public class PauseCommand extends MigrationCommandSupport {

    @Argument(index = 0, name = "id", required = true, description = "A migration (out-N or in-N) in POSTCOPY")
    @Completion(MigrationIdCompleter.class)
    String id;

    @Override
    protected Object run() throws InterruptedException {
        Migration m = migration(id);
        m.pause();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (m.state() == MigrationState.POSTCOPY && System.nanoTime() < deadline) Thread.sleep(5);
        // a destination whose source is QEMU waits for postcopy:recover; ours resumes from its source
        boolean qemuSource = m instanceof io.postcopy.migration.IncomingMigration
                && m.reason().map(r -> r.contains("QEMU: recover here")).orElse(false);
        out().println("Migration " + id + ": " + m.state() + (m.state() != MigrationState.POSTCOPY_PAUSED ? ""
                : qemuSource ? " (its source is QEMU: postcopy:recover " + id + " PORT, then QEMU's migrate with resume=true to it)"
                : " (resume with postcopy:resume on the source)"));
        return null;
    }
}
