package io.postcopy.fault;

/** The destination's postcopy states, in order (the seed's {@code PostcopyState}). */
public enum IncomingState {
    /** Created; nothing done yet. */
    NONE,
    /** Host support checked, every block emptied; precopy pages may be loaded. */
    ADVISE,
    /** Transparent huge pages off; discards from the source are being applied. */
    DISCARD,
    /** userfaultfd registered and the fault thread running; pages are placed atomically. */
    LISTENING,
    /** The guest runs on the destination; its faults become page requests. */
    RUNNING,
    /** Cleaned up (completed, cancelled or failed). */
    END
}
