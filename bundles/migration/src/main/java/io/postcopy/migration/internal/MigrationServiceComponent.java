package io.postcopy.migration.internal;

import io.postcopy.fault.FaultService;
import io.postcopy.migration.DeviceStateHandler;
import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationService;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.migration.OutgoingOptions;
import io.postcopy.ramblock.RamBlockRegistry;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Optional;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.metatype.annotations.Designate;
import io.postcopy.uffd.UrgentThread;

/** The migration service in OSGi; {@link DeviceStateHandler} services are picked up as a whiteboard. */
@Component(service = MigrationService.class, immediate = true, configurationPid = "io.postcopy.migration")
@Designate(ocd = MigrationConfig.class)
public class MigrationServiceComponent implements MigrationService {
    private final MigrationServiceImpl impl;
    private IncomingListener configured;

    @Activate
    public MigrationServiceComponent(@Reference RamBlockRegistry registry, @Reference FaultService faultService,
                                     MigrationConfig config) {
        impl = new MigrationServiceImpl(registry, faultService, settings(config));
        openConfigured(config);
    }

    private static Settings settings(MigrationConfig c) {
        UrgentThread.budget(Settings.realtimeCpuPercent(c), UrgentThread.DEFAULT_BURST_NANOS);
        return Settings.of(c);
    }

    private synchronized void openConfigured(MigrationConfig c) {
        if (configured != null) {
            configured.close();
            configured = null;
        }
        if (c.listenPort() >= 0) {
            configured = impl.listen(new InetSocketAddress(c.listenAddress(), c.listenPort()), IncomingOptions.defaults());
        }
    }

    @Modified
    void modified(MigrationConfig config) {
        impl.configure(settings(config));
        openConfigured(config);
    }

    @Deactivate
    void deactivate() {
        impl.close();
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void bindDeviceStateHandler(DeviceStateHandler h) {
        impl.addDeviceStateHandler(h);
    }

    void unbindDeviceStateHandler(DeviceStateHandler h) {
        impl.removeDeviceStateHandler(h);
    }

    /** Whiteboard: every {@link io.postcopy.migration.MigrationListener} service is told of every state change. */
    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void bindMigrationListener(io.postcopy.migration.MigrationListener l) {
        impl.addMigrationListener(l);
    }

    void unbindMigrationListener(io.postcopy.migration.MigrationListener l) {
        impl.removeMigrationListener(l);
    }

    @Override
    public IncomingListener listen(InetSocketAddress bind, IncomingOptions options) {
        return impl.listen(bind, options);
    }

    @Override
    public OutgoingMigration migrate(InetSocketAddress target, OutgoingOptions options) {
        return impl.migrate(target, options);
    }

    @Override
    public List<Migration> migrations() {
        return impl.migrations();
    }

    @Override
    public Optional<Migration> get(String id) {
        return impl.get(id);
    }

    @Override
    public List<IncomingListener> listeners() {
        return impl.listeners();
    }

    @Override
    public String tlsEngine() {
        return impl.tlsEngine();
    }
}
