package io.postcopy.workload;

import java.util.Map;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Workloads by block name, on blocks of the {@link io.postcopy.ramblock.RamBlockRegistry} service: at most one
 * per block. A workload is stopped before its block is removed from the registry.
 */
@ProviderType
public interface WorkloadService {
    /**
     * Starts a workload on the named block.
     *
     * @throws IllegalArgumentException when no block has that name
     * @throws IllegalStateException when a workload already runs on it
     */
    Workload start(String blockName, WorkloadOptions options);

    /** Stops and forgets the block's workload; false when there was none. */
    boolean stop(String blockName);

    /** The block's workload, or null. */
    Workload get(String blockName);

    /** Workloads by block name, a snapshot in name order (ended ones included until stopped). */
    Map<String, Workload> list();

    /**
     * Verifies the named block ({@link Workload#verify(RamBlock)}); a running workload on it is paused for
     * the check and resumed after.
     */
    VerifyResult verify(String blockName);
}
