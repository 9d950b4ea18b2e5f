package io.postcopy.migration;

/** How an outgoing migration moves memory. */
public enum MigrationMode {
    /** Switch to postcopy at once: no page is sent before the guest is paused. */
    POSTCOPY,
    /**
     * Precopy iterations while the guest runs, then the switch: after {@link OutgoingOptions#postcopyAfter()},
     * when an iteration no longer shrinks the dirty set, after {@link OutgoingOptions#maxIterations()}, or on
     * {@link OutgoingMigration#startPostcopy()}.
     */
    HYBRID,
    /** Precopy iterations, then the guest is paused and the last dirty pages are sent; no postcopy. */
    PRECOPY_ONLY
}
