package io.postcopy.workload;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.internal.RunningWorkload;

/** Starts workloads without an OSGi framework (tests, benchmarks, the migration demo). */
public final class Workloads {
    private Workloads() {}

    /**
     * Starts {@link WorkloadOptions#threads()} threads on {@code block}; they run until the workload is stopped
     * or its duration or access limit is reached. The block must stay mapped until the workload has stopped.
     */
    public static Workload start(RamBlock block, WorkloadOptions options) {
        return RunningWorkload.start(block, options);
    }
}
