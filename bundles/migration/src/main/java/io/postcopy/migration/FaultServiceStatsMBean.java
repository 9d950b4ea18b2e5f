package io.postcopy.migration;

import org.osgi.annotation.versioning.ProviderType;

/**
 * JMX view of the fault service, {@code io.postcopy:type=FaultService}, published by the migration bundle
 * ({@code JMX.newMBeanProxy} with this interface reads it).
 *
 * @since 2.0 (in the API package; before, internal)
 */
@ProviderType
public interface FaultServiceStatsMBean {
    /** Live incoming postcopy migrations (registered with userfaultfd now). */
    int getLiveIncoming();

    /** Their ids. */
    String[] getIncomingIds();

    /** Bound placement backends, highest ranking first: {@code name (ranking N): blocks in use}. */
    String[] getBackends();

    /** Faults read so far by the live incoming migrations. */
    long getLiveFaults();
}
