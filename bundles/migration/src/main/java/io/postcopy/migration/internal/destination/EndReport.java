package io.postcopy.migration.internal.destination;

import io.postcopy.codec.CodecException;
import io.postcopy.fault.MissingPages;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.AbstractMigration;
import io.postcopy.migration.internal.Refused;
import java.io.IOException;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedChannelException;

/**
 * How a failed incoming migration ends: its final state and the reason it gives, from the state it was in, what ended
 * it and the pages that never came. A pure function of those, so that every wording is tested without a socket.
 *
 * @param state  CANCELLED or FAILED
 * @param reason the one line a user reads (tests and management tools match it)
 */
record EndReport(MigrationState state, String reason) {

    /**
     * @param cause     what ended it (a failure told by another thread takes precedence over the stream thread's own)
     * @param cancelled whether it was cancelled here
     * @param in        the state it failed in
     * @param missing   what the fault service's cleanup found missing, or null (no blocks, or the cleanup failed)
     */
    static EndReport failed(Throwable cause, boolean cancelled, MigrationState in, MissingPages missing) {
        String reason;
        if (cancelled) {
            reason = "cancelled on the destination";
        } else if (endOfInput(cause)) {
            reason = "connection closed by the source in " + in + ": " + cause.getMessage();
        } else if (cause instanceof AsynchronousCloseException || cause instanceof ClosedChannelException) {
            reason = "connection closed in " + in;
        } else if (cause instanceof Refused) {
            reason = cause.getMessage();
        } else if (cause instanceof IOException && !(cause instanceof CodecException)) {
            reason = "connection to the source failed in " + in + ": " + AbstractMigration.describe(cause);
        } else {
            reason = AbstractMigration.describe(cause);
        }
        if (missing != null && missing.totalBytes() > 0) {
            int n = missing.ranges().size();
            reason += "; " + missing.totalBytes() + " bytes in " + n + (n == 1 ? " range" : " ranges") + " never received";
        }
        return new EndReport(cancelled ? MigrationState.CANCELLED : MigrationState.FAILED, reason);
    }

    /** Whether {@code t} is the decoder's "the input ended inside the stream": the source closed its side. */
    static boolean endOfInput(Throwable t) {
        return t instanceof CodecException ce && ce.kind() == CodecException.Kind.TRUNCATED
                && String.valueOf(ce.getMessage()).contains("end of input");
    }
}
