package io.postcopy.migration;

import org.osgi.annotation.versioning.ProviderType;

/**
 * JMX view of one migration, {@code io.postcopy:type=Migration,id=ID}, published by the migration bundle
 * ({@code JMX.newMBeanProxy} with this interface reads it; its notifications are {@link MigrationEvent}s). Pages are
 * 4 KiB target pages; latencies are fault-to-placement in microseconds (destination only, 0 on the source).
 *
 * <p>Only the migration bundle implements it (a provider type): a getter added for a new figure is a minor change.
 *
 * @since 2.0 (in the API package; before, internal)
 */
@ProviderType
public interface MigrationStatsMBean {
    String getId();

    /** {@code outgoing} or {@code incoming}. */
    String getDirection();

    String getPeer();

    /** SETUP, PRECOPY, POSTCOPY, POSTCOPY_PAUSED, POSTCOPY_RECOVER, COMPLETED, FAILED or CANCELLED. */
    String getState();

    /** Why the migration is in its state: the failure, or why it paused and what it waits for; empty when none. */
    String getReason();

    /** The failure message, empty when none. */
    String getFailure();

    long getBytes();

    long getPages();

    long getZeroPages();

    long getTotalPages();

    long getRemainingPages();

    double getPercentDone();

    /** Page payload bytes per second (during postcopy once it began). */
    double getThroughput();

    long getFaults();

    long getRequests();

    /** Pages the source pushed right after requested ones (prefetch); 0 on a destination. */
    long getPrefetchedPages();

    long getDiscards();

    double getLatencyP50Micros();

    double getLatencyP99Micros();

    double getLatencyMaxMicros();

    long getBlocktimeMicros();

    /** The source's {@code downtime()} in microseconds; -1 before it is known and on the destination. */
    long getDowntimeMicros();
}
