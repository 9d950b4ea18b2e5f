package io.postcopy.fault.standalone;

import io.postcopy.fault.FaultService;

import io.postcopy.fault.internal.FaultServiceImpl;
import io.postcopy.policy.BalloonInhibitor;
import io.postcopy.policy.HugePagePolicy;
import io.postcopy.policy.MemoryLockPolicy;
import io.postcopy.ramblock.RamBlockRegistry;

/**
 * The fault service without a framework (tests, benchmarks, embedding); in OSGi use the service. The caller adds
 * the placement backends ({@link StandaloneFaultService#addBackend}), e.g. {@code AnonBackends.newBackend()}.
 */
public final class FaultHandlers {
    private FaultHandlers() {}

    public static StandaloneFaultService newService(RamBlockRegistry registry, BalloonInhibitor balloon,
                                          MemoryLockPolicy memoryLock, HugePagePolicy hugePages) {
        return new FaultServiceImpl(registry, balloon, memoryLock, hugePages);
    }

    /**
     * As above, with the fault thread's scheduling (the configuration's {@code faultThreadNice} and
     * {@code faultThreadFifoPriority}: 0 = the nice value applies, 1..99 = SCHED_FIFO at that priority).
     */
    public static StandaloneFaultService newService(RamBlockRegistry registry, BalloonInhibitor balloon,
                                          MemoryLockPolicy memoryLock, HugePagePolicy hugePages, int faultThreadNice,
                                          int faultThreadFifoPriority) {
        FaultServiceImpl s = new FaultServiceImpl(registry, balloon, memoryLock, hugePages);
        s.configure(FaultServiceImpl.config(java.util.Map.of("faultThreadNice", faultThreadNice,
                "faultThreadFifoPriority", faultThreadFifoPriority)));
        return s;
    }
}
