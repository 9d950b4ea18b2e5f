package io.postcopy.migration.standalone;

import io.postcopy.migration.MigrationService;

import io.postcopy.fault.FaultService;
import io.postcopy.migration.internal.MigrationServiceImpl;
import io.postcopy.migration.internal.Settings;
import io.postcopy.ramblock.RamBlockRegistry;

/** The migration service without a framework (tests, benchmarks, embedding); in OSGi use the service. */
public final class Migrations {
    private Migrations() {
    }

    /**
     * @param registry     the blocks to migrate from, and where incoming blocks are created
     * @param faultService a fault service over the same registry (destination placement)
     */
    public static StandaloneMigrationService newService(RamBlockRegistry registry, FaultService faultService) {
        return new MigrationServiceImpl(registry, faultService, Settings.DEFAULTS);
    }

    /**
     * As {@link #newService(RamBlockRegistry, FaultService)}, configured as the OSGi service is: {@code config}
     * holds attributes of PID {@code io.postcopy.migration} by name ({@code "bulkThreadNice"}, {@code
     * "sendBufferSize"}, ... — docs/admin-guide.md, "Configuration"), numbers or decimal strings; absent ones keep
     * their defaults. {@code realtimeCpuPercent}, if given, sets the JVM-wide real-time budget. An unknown key or
     * a bad value throws IllegalArgumentException naming it.
     */
    public static StandaloneMigrationService newService(RamBlockRegistry registry, FaultService faultService,
                                              java.util.Map<String, ?> config) {
        io.postcopy.migration.internal.MigrationConfig c = Settings.config(config);
        Settings s = Settings.of(c);
        if (config.containsKey("realtimeCpuPercent")) {
            io.postcopy.uffd.UrgentThread.budget(Settings.realtimeCpuPercent(c), io.postcopy.uffd.UrgentThread.DEFAULT_BURST_NANOS);
        }
        return new MigrationServiceImpl(registry, faultService, s);
    }

    /**
     * As {@link #newService(RamBlockRegistry, FaultService)}, with service defaults (the configuration's
     * attributes): socket buffer sizes (0 = kernel default), the staging batch size, the package cap.
     */
    public static StandaloneMigrationService newService(RamBlockRegistry registry, FaultService faultService,
                                              int sendBufferSize, int receiveBufferSize, int stagingBatchSize,
                                              int maxPackageSize) {
        return newService(registry, faultService, java.util.Map.of("sendBufferSize", sendBufferSize,
                "receiveBufferSize", receiveBufferSize, "stagingBatchSize", stagingBatchSize, "maxPackageSize", maxPackageSize));
    }

    /**
     * As above, with the scheduling of the threads a requested page passes (the configuration's
     * {@code urgentThreadNice} and {@code urgentThreadFifoPriority}: 0 = the nice value applies, 1..99 = SCHED_FIFO).
     */
    public static StandaloneMigrationService newService(RamBlockRegistry registry, FaultService faultService,
                                              int sendBufferSize, int receiveBufferSize, int stagingBatchSize,
                                              int maxPackageSize, int urgentThreadNice, int urgentThreadFifoPriority) {
        return newService(registry, faultService, java.util.Map.of("sendBufferSize", sendBufferSize,
                "receiveBufferSize", receiveBufferSize, "stagingBatchSize", stagingBatchSize, "maxPackageSize", maxPackageSize,
                "urgentThreadNice", urgentThreadNice, "urgentThreadFifoPriority", urgentThreadFifoPriority));
    }
}
