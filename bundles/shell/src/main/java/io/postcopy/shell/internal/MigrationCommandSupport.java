package io.postcopy.shell.internal;

import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationException;
import io.postcopy.migration.MigrationService;
import java.net.InetSocketAddress;
import java.time.Duration;
import org.apache.karaf.shell.api.action.lifecycle.Reference;

/**
 * The migration commands' base: the migration service (Karaf registers the commands only while it is there),
 * the id lookup, and {@link MigrationException}s turned into one line like every other user error.
 */
public abstract class MigrationCommandSupport extends PostcopyCommandSupport {

    @Reference
    protected MigrationService migrations;

    @Override
    protected final Object doExecute() throws Exception {
        try {
            return run();
        } catch (MigrationException e) {
            throw new IllegalStateException(oneLine(e), e);
        }
    }

    /** The command's work. */
    protected abstract Object run() throws Exception;

    /** The migration with this id, or a one-line error that says where the ids are. */
    protected Migration migration(String id) {
        return migrations.get(id).orElseThrow(() -> new IllegalArgumentException(
                "no migration with id \"" + id + "\" (postcopy:status lists them)"));
    }

    /** {@code HOST:PORT} (IPv6 as {@code [::1]:PORT}) to an unresolved-if-need-be socket address. */
    static InetSocketAddress hostPort(String text) {
        int colon = text.lastIndexOf(':');
        if (colon <= 0 || colon == text.length() - 1)
            throw new IllegalArgumentException("\"" + text + "\" is not HOST:PORT (like 127.0.0.1:4444)");
        String host = text.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
        return new InetSocketAddress(host, port(text.substring(colon + 1), 1));
    }

    /** A port number, {@code min}..65535. */
    static int port(String text, int min) {
        int p;
        try {
            p = Integer.parseInt(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("port \"" + text + "\" is not a number");
        }
        if (p < min || p > 65535) throw new IllegalArgumentException("port " + p + " is not in " + min + "..65535");
        return p;
    }

    /** A duration like {@code 500ms}, {@code 2s}, {@code 5m}, {@code 1h} (a bare number is seconds). */
    static Duration duration(String text) {
        return WorkloadCommand.duration(text);
    }
}
