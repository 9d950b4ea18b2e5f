package io.postcopy.shell.internal;

import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.Migration;
import io.postcopy.shell.internal.completers.MigrationIdCompleter;
import java.net.InetSocketAddress;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** QEMU's migrate-recover: a paused incoming migration waits on a port of its own for its QEMU source to resume. */
@Command(scope = "postcopy", name = "recover",
        description = "Waits on PORT for the QEMU source of a paused incoming migration to resume it (QEMU: migrate "
                + "with \"resume\": true to that port); our own source needs no recover: it resumes to the listener")
@Service
public class RecoverCommand extends MigrationCommandSupport {

    @Option(name = "--bind", description = "Address to listen on (default 127.0.0.1); off loopback the listener's TLS "
            + "or --insecure must allow it")
    String bind = "127.0.0.1";

    @Argument(index = 0, name = "id", required = true, description = "A paused incoming migration (in-N)")
    @Completion(MigrationIdCompleter.class)
    String id;

    @Argument(index = 1, name = "port", required = true, description = "Port to wait on (0: any free port)")
    int port;

    @Override
    protected Object run() {
        Migration m = migration(id);
        if (!(m instanceof IncomingMigration in))
            throw new IllegalArgumentException("migration " + id + " is outgoing; recover is for the destination (in-N); "
                    + "the source uses postcopy:resume");
        if (port < 0 || port > 65535) throw new IllegalArgumentException("port " + port + " is not 0..65535");
        InetSocketAddress at = in.recover(new InetSocketAddress(bind, port));
        out().println("Migration " + id + " waits on " + Text.address(at)
                + " for its source to resume it; on QEMU's monitor:");
        out().println("  {\"execute\": \"migrate\", \"arguments\": {\"uri\": \"tcp:" + at.getAddress().getHostAddress() + ":"
                + at.getPort() + "\", \"resume\": true}}");
        return null;
    }
}
