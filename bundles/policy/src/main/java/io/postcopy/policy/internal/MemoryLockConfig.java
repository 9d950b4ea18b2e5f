package io.postcopy.policy.internal;

import io.postcopy.policy.MemoryLockPolicy;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

@ObjectClassDefinition(id = MemoryLockPolicy.PID, name = "Postcopy memory lock",
        description = "Whether the process keeps its memory locked with mlockall; the lock is dropped while"
                + " userfaultfd is in use and restored after postcopy.")
public @interface MemoryLockConfig {
    @AttributeDefinition(name = "Lock memory",
            description = "Lock all memory (mlockall MCL_CURRENT|MCL_FUTURE) at activation and again after each"
                    + " postcopy; a failure to re-lock is logged, not fatal.")
    boolean lockMemory() default false;
}
