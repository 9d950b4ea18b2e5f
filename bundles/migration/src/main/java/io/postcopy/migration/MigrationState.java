package io.postcopy.migration;

/** Where a migration is. COMPLETED, FAILED and CANCELLED are final. */
public enum MigrationState {
    /** Connecting, handshake, block list. */
    SETUP,
    /** Pages sent (received) while the guest runs on the source. */
    PRECOPY,
    /** The guest runs on the destination; missing pages are requested. */
    POSTCOPY,
    /**
     * Postcopy with its connection lost (QEMU's postcopy-paused): nothing is lost. The source keeps its guest
     * paused and its RAM; the destination's guest threads that fault stay blocked, their requests kept. Ends
     * by a resume ({@link OutgoingMigration#resume}) or a cancel.
     */
    POSTCOPY_PAUSED,
    /** A resumed connection's handshake (received bitmaps, POSTCOPY_RESUME, RESUME_ACK); back to POSTCOPY, or PAUSED. */
    POSTCOPY_RECOVER,
    COMPLETED,
    FAILED,
    CANCELLED;

    public boolean isFinal() {
        return this == COMPLETED || this == FAILED || this == CANCELLED;
    }
}
