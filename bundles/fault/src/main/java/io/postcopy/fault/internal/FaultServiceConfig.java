package io.postcopy.fault.internal;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

@ObjectClassDefinition(id = "io.postcopy.fault", name = "Postcopy fault-handler service",
        description = "The destination's fault thread and page placement")
public @interface FaultServiceConfig {
    @AttributeDefinition(name = "Fault batch", description = "userfaultfd messages read per read() call by the fault thread (1..4096)")
    int faultBatch() default 64;

    @AttributeDefinition(name = "Backend wait (ms)", description = "How long a placement waits for a placement backend "
            + "that supports its block (e.g. while a backend bundle is updated) before the migration fails")
    long backendWaitMillis() default 30000;

    @AttributeDefinition(name = "Fault thread nice", description = "Nice value of the fault thread (-20..19). Below 0 "
            + "it wins the CPU from the guest's and the bulk stream's threads, so a fault becomes a request at once; "
            + "needs CAP_SYS_NICE, else the thread keeps the default priority (logged once)")
    int faultThreadNice() default -5;

    @AttributeDefinition(name = "Fault thread SCHED_FIFO priority", description = "0: off (the nice value applies). "
            + "1..99: the fault thread runs SCHED_FIFO at that priority while within the JVM's real-time CPU budget "
            + "(the migration service's realtimeCpuPercent), so it never waits for a CPU behind ordinary threads; "
            + "needs CAP_SYS_NICE")
    int faultThreadFifoPriority() default 1;
}
