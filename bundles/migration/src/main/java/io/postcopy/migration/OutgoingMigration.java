package io.postcopy.migration;

import org.osgi.annotation.versioning.ProviderType;

/** The source side of a migration. */
@ProviderType
public interface OutgoingMigration extends Migration {
    /** Switches a HYBRID migration to postcopy after the current precopy chunk; ignored otherwise. */
    void startPostcopy();

    OutgoingOptions options();

    /**
     * How long the guest could run nowhere: from the pause of the source's guest (at the switch to postcopy, or
     * at the end of precopy) until the destination answered the PING that follows the package (it has read RUN
     * and resumed its guest), or, for a migration that completes in precopy, until its SHUT. Includes the final
     * dirty scan, the discards and the device state, as QEMU's {@code downtime} does. Empty before that point.
     *
     * @since 1.3
     */
    java.util.Optional<java.time.Duration> downtime();

    /**
     * The downtime as QEMU reports it for a postcopy migration: from the pause of the source's guest until the package
     * with RUN is on the wire (QEMU's {@code postcopy_start}); the destination's reading and resuming come after it.
     * For a migration that completes in precopy, the same as {@link #downtime}. Empty before that point.
     *
     * @since 3.1
     */
    java.util.Optional<java.time.Duration> downtimeToPackageSent();

    /**
     * Resumes a migration in {@link MigrationState#POSTCOPY_PAUSED} over a new connection to {@code target}
     * (QEMU's {@code migrate} with {@code resume}): the destination answers with what it has received, the rest is
     * sent again. Returns at once; a failed attempt leaves the migration paused, to be retried.
     *
     * @throws IllegalStateException when the migration is not paused
     * @since 1.4
     */
    void resume(java.net.InetSocketAddress target);
}
