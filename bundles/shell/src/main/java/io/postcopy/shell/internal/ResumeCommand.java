package io.postcopy.shell.internal;

import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.shell.internal.completers.MigrationIdCompleter;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** QEMU's migrate with resume=true: a paused outgoing migration goes on over a new connection. */
@Command(scope = "postcopy", name = "resume",
        description = "Resumes a paused outgoing migration over a new connection to HOST:PORT (the destination's "
                + "listener): what the destination lacks is sent again")
@Service
public class ResumeCommand extends MigrationCommandSupport {

    @Argument(index = 0, name = "id", required = true, description = "A paused outgoing migration (out-N)")
    @Completion(MigrationIdCompleter.class)
    String id;

    @Argument(index = 1, name = "target", required = true, description = "HOST:PORT of the destination's listener")
    String target;

    @Override
    protected Object run() throws InterruptedException {
        Migration m = migration(id);
        if (!(m instanceof OutgoingMigration o))
            throw new IllegalArgumentException("migration " + id + " is incoming; resume is for the source (out-N)");
        o.resume(hostPort(target));
        // the attempt starts (RECOVER) and ends: POSTCOPY on RESUME_ACK, or PAUSED again
        long start = System.nanoTime();
        while (o.state() == MigrationState.POSTCOPY_PAUSED && System.nanoTime() - start < 5_000_000_000L) Thread.sleep(2);
        while (o.state() == MigrationState.POSTCOPY_RECOVER && System.nanoTime() - start < 40_000_000_000L) Thread.sleep(5);
        MigrationState s = o.state();
        if (s == MigrationState.POSTCOPY_PAUSED || s == MigrationState.POSTCOPY_RECOVER)
            throw new IllegalStateException("migration " + id + " is still " + s + ": the resume did not go through (the log "
                    + "says why); try again");
        out().println("Migration " + id + ": resumed to " + target + ", now " + s);
        return null;
    }
}
