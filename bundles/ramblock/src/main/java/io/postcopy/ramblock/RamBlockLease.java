package io.postcopy.ramblock;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A hold on a block's memory: while any lease on a block is open, the registry never unmaps it. Whoever reads or
 * writes a block's memory (a migration's senders and placements, a workload's threads, a digest) holds one for as
 * long as it may touch it, and closes it only once none of its threads can touch it any more.
 *
 * <p>Taken with {@link RamBlock#lease}; closing is idempotent and may happen from any thread.
 */
@ProviderType
public interface RamBlockLease extends AutoCloseable {
    RamBlock block();

    /** Who holds it, as named in refusals: e.g. {@code migration out-3}. */
    String holder();

    /** Lets go: the block may be unmapped once every lease on it is closed. Idempotent. */
    @Override
    void close();
}
