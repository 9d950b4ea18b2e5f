package io.postcopy.shell.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.CommandException;

/**
 * What every {@code postcopy:*} command shares: the RAM-block registry (Karaf injects it, and registers the
 * commands only while it is there), the session (for the current directory), the block lookup, and the
 * turning of user errors into one line.
 *
 * <p>User errors — a bad size, an unknown block, a file that cannot be written, a refusal by the kernel or
 * by a service — reach the console as Karaf's {@link CommandException}: one line, no stack trace, logged only
 * at DEBUG. Anything else is a bug and propagates as is.
 */
public abstract class PostcopyCommandSupport implements Action {

    /** Output width the tables are laid out for. */
    protected static final int WIDTH = 100;

    @Reference
    protected RamBlockRegistry registry;

    @Reference
    protected Session session;

    @Override
    public final Object execute() throws Exception {
        try {
            return doExecute();
        } catch (IllegalArgumentException | IllegalStateException | UnsupportedOperationException
                 | io.postcopy.uffd.UffdException | io.postcopy.fault.PostcopyException e) {
            throw error(prefix() + oneLine(e));
        } catch (IOException e) {
            throw error(prefix() + ioMessage(e));
        } catch (UncheckedIOException e) {
            throw error(prefix() + ioMessage(e.getCause()));
        }
    }

    /**
     * Karaf prints a CommandException's "nice help", in red unless the help is given: given here, plain, whenever
     * the session has no terminal (bin/client "CMD", a script), so that no escape codes end up in a file.
     */
    private CommandException error(String message) {
        return Text.colours(session) ? new CommandException(message)
                : new CommandException("Error executing command: " + message, message);
    }

    /** The command's work; user errors are thrown as the exceptions {@link #execute()} turns into one line. */
    protected abstract Object doExecute() throws Exception;

    /** The block named {@code name}, or a one-line error that says where the names are. */
    protected RamBlock block(String name) {
        RamBlock b = registry.byName(name);
        if (b == null) throw new IllegalArgumentException("no RAM block named \"" + name + "\" (postcopy:blocks lists them)");
        return b;
    }

    /** {@code file} resolved against the session's current directory (Karaf's {@code cd}). */
    protected Path resolve(String file) {
        Path p = Path.of(file);
        if (p.isAbsolute() || session == null) return p;
        Path cwd = session.currentDir();
        return cwd == null ? p.toAbsolutePath() : cwd.resolve(p);
    }

    /** Where digest and inspect may read and write: {@code postcopy.files.dir}, by default {@code ${karaf.data}/postcopy-files}. */
    static Path filesDirectory() {
        String dir = System.getProperty("postcopy.files.dir");
        if (dir == null || dir.isBlank()) {
            String data = System.getProperty("karaf.data");
            dir = (data != null ? data : System.getProperty("java.io.tmpdir")) + "/postcopy-files";
        }
        return Path.of(dir).toAbsolutePath().normalize();
    }

    /**
     * {@code file} for digest and inspect: a relative name is taken inside {@link #filesDirectory()}; an absolute one
     * must lie inside it too (after resolving links of its existing part) unless {@code postcopy.files.anywhere=true}.
     * The shell runs as the user of the management server (often root): without this, a shell user could write or
     * read any file that user can.
     */
    protected Path confined(String file) {
        Path dir = filesDirectory();
        Path p = Path.of(file);
        if (Boolean.getBoolean("postcopy.files.anywhere")) return p.isAbsolute() ? p : resolve(file);
        Path target = (p.isAbsolute() ? p : dir.resolve(p)).normalize();
        try {
            java.nio.file.Files.createDirectories(dir);
            Path realDir = dir.toRealPath();
            Path existing = target;
            while (existing != null && !java.nio.file.Files.exists(existing)) existing = existing.getParent();
            Path real = existing == null ? target : existing.toRealPath().resolve(existing.relativize(target)).normalize();
            if (real.startsWith(realDir) && !real.equals(realDir)) return real;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        throw new IllegalArgumentException(file + " is outside " + dir + ", the directory where postcopy:digest and "
                + "postcopy:inspect read and write (system property postcopy.files.dir in etc/custom.system.properties; "
                + "postcopy.files.anywhere=true lifts the rule)");
    }

    /** The session's output (System.out is the session's stream while a command runs). */
    protected PrintStream out() {
        return System.out;
    }

    private String prefix() {
        Command c = getClass().getAnnotation(Command.class);
        return c == null ? "" : c.scope() + ":" + c.name() + ": ";
    }

    static String oneLine(Throwable e) {
        String m = e.getMessage();
        if (m == null || m.isBlank()) m = e.getClass().getSimpleName();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    static String ioMessage(IOException e) {
        if (e instanceof NoSuchFileException f) return "no such file or directory: " + f.getFile();
        if (e instanceof AccessDeniedException f) return "permission denied: " + f.getFile();
        if (e instanceof FileAlreadyExistsException f) return "file exists: " + f.getFile();
        if (e instanceof NotDirectoryException f) return "not a directory: " + f.getFile();
        return oneLine(e);
    }
}
