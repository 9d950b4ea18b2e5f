package io.postcopy.migration;

import io.postcopy.fault.FaultStatistics;
import java.time.Duration;
import java.util.Optional;
import org.osgi.annotation.versioning.ProviderType;

/** One migration, outgoing or incoming. Thread-safe. */
@ProviderType
public interface Migration {
    /** Unique within its service: {@code out-N} or {@code in-N}. */
    String id();

    /** The other end, {@code host:port}. */
    String peer();

    MigrationState state();

    /**
     * The other side's id for this migration ({@code in-N} on the source, {@code out-N} on the destination) when both
     * sides are ours: exchanged on the main stream and the return path once the stream has begun. Empty for a QEMU
     * source, before the exchange, and with a peer of an older version.
     *
     * @since 2.0
     */
    default Optional<String> peerId() {
        return Optional.empty();
    }

    MigrationProgress progress();

    /** Why it failed or was cancelled: the precise message (for malformed input, the codec's). */
    Optional<String> failure();

    /**
     * Why it is in its state now: the failure once FAILED or CANCELLED, why it paused in POSTCOPY_PAUSED (the lost
     * connection, a resume that did not go through); empty otherwise.
     *
     * @since 1.4
     */
    Optional<String> reason();

    /** The fault service's statistics (destination after LISTEN); empty on the source. */
    Optional<FaultStatistics> statistics();

    /**
     * Ends the migration: its connections close at once and both sides end; returns without waiting. The
     * migration reports its final state only once none of its threads can touch its RAM blocks any more, so
     * {@link #awaitCompletion} then waits for that. Idempotent.
     */
    void cancel();

    /**
     * QEMU's {@code migrate-pause}: closes the connections of a migration in {@link MigrationState#POSTCOPY}, which
     * pauses it on both sides (nothing is lost; the source resumes it).
     *
     * @throws IllegalStateException when the migration is not in POSTCOPY
     * @since 1.4
     */
    void pause();

    /**
     * Waits until the migration is in a final state. Once it is, its threads have let go of the blocks: they may
     * be removed at once.
     *
     * @return the state, possibly not final if the timeout elapsed
     */
    MigrationState awaitCompletion(Duration timeout) throws InterruptedException;
}
