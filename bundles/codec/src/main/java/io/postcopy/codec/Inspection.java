package io.postcopy.codec;

import io.postcopy.codec.internal.Inspector;
import java.io.PrintStream;
import java.util.List;

/**
 * The stream inspector as a library call, for hosts other than {@code java -jar} (the Karaf shell's
 * {@code postcopy:inspect}). Same arguments, output and exit status as the command line:
 * {@code inspect [--summary] [--return-path] [--ram-digest DIR] [--all-pages] STREAM}.
 */
public final class Inspection {
    /** Exit status: success. */
    public static final int OK = 0;
    /** Exit status: an I/O error (one line on {@code err}). */
    public static final int IO_ERROR = 1;
    /** Exit status: a malformed stream (one line on {@code err} naming offset, field, value and expectation). */
    public static final int MALFORMED = 2;
    /** Exit status: a usage error (the usage line on {@code err}). */
    public static final int USAGE = 64;

    private Inspection() {}

    /**
     * Runs the inspector on {@code args} (the first being {@code "inspect"}), printing the listing or the
     * {@code --summary} JSON to {@code out} and any error to {@code err}; returns the exit status.
     */
    public static int run(List<String> args, PrintStream out, PrintStream err) {
        return Inspector.run(args.toArray(new String[0]), out, err);
    }
}
