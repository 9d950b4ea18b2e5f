package io.postcopy.ramblock;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Told when blocks come and go. Register one as an OSGi service (whiteboard) or add it to a registry
 * directly. Calls are made in order, one at a time, from the thread that changed the registry; a listener
 * must return promptly and must not wait for another thread that changes the registry.
 */
@ConsumerType
public interface RamBlockListener {
    /** The block is registered and visible to lookups. */
    void blockAdded(RamBlock block);

    /** The block is no longer visible to lookups; an owned block's memory is still mapped during this call. */
    void blockRemoved(RamBlock block);
}
