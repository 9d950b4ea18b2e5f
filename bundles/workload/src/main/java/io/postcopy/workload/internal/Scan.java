package io.postcopy.workload.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockLease;

/**
 * A pass over a block's memory (fill, verify, digest) under a lease: a forced removal of the block asks it to
 * stop, which it does at the next chunk, with an exception that says why.
 */
public final class Scan implements AutoCloseable {
    private final RamBlockLease lease;
    private volatile boolean stop;

    public Scan(RamBlock block, String what) {
        this.lease = block.lease(what + " of " + block.idstr(), () -> stop = true);
    }

    /** Call between chunks: throws once the block is being removed. */
    public void check() {
        if (stop) throw new IllegalStateException(lease.holder() + " stopped: the block is being removed");
    }

    @Override
    public void close() {
        lease.close();
    }
}
