package io.postcopy.fault.test;

import io.postcopy.fault.FaultService;
import io.postcopy.fault.standalone.FaultHandlers;
import io.postcopy.policy.Policies;
import io.postcopy.ramblock.RamBlockRegistry;

/** A fault service outside OSGi with the policies tests use (no memory locking). Any thread. */
public final class TestFaultServices {
    private TestFaultServices() {}

    /** A fault service over {@code registry} without backends: the test adds the ones it wants. */
    public static io.postcopy.fault.standalone.StandaloneFaultService newService(RamBlockRegistry registry) {
        return FaultHandlers.newService(registry, Policies.newBalloonInhibitor(), Policies.newMemoryLockPolicy(false),
                Policies.newHugePagePolicy(true));
    }
}
