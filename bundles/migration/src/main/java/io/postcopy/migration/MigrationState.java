package io.postcopy.migration;

/** Where a migration is. COMPLETED, FAILED and CANCELLED are final. */
public enum MigrationState {
    /** Connecting, handshake, block list. */
    SETUP,
    /** Pages sent (received) while the guest runs on the source. */
    PRECOPY,
    /** The guest runs on the destination; missing pages are requested. */
    POSTCOPY,
    COMPLETED,
    FAILED,
    CANCELLED;

    public boolean isFinal() {
        return this == COMPLETED || this == FAILED || this == CANCELLED;
    }
}
