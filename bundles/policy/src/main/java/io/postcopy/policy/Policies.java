package io.postcopy.policy;

import io.postcopy.policy.internal.BalloonInhibition;
import io.postcopy.policy.internal.MemoryLock;
import io.postcopy.policy.internal.TransparentHugePages;
import io.postcopy.uffd.NativeMemory;

/** The policies without an OSGi framework (tests, benchmarks, tools). */
public final class Policies {
    private Policies() {}

    public static BalloonInhibitor newBalloonInhibitor() {
        return new BalloonInhibition();
    }

    /** A memory-lock policy; nothing is locked until {@link MemoryLockPolicy#lockIfConfigured()}. */
    public static MemoryLockPolicy newMemoryLockPolicy(boolean lockMemory) {
        return new MemoryLock(lockMemory, NativeMemory.MCL_CURRENT | NativeMemory.MCL_FUTURE);
    }

    public static HugePagePolicy newHugePagePolicy(boolean restoreHugePages) {
        return new TransparentHugePages(restoreHugePages);
    }
}
