package io.postcopy.migration.standalone;

import io.postcopy.migration.DeviceStateHandler;
import io.postcopy.migration.MigrationListener;
import io.postcopy.migration.MigrationService;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A migration service made without a framework: the caller adds what the OSGi component takes from the service
 * registry. The OSGi service has no such methods: there a handler or a listener is a service, and nothing else.
 */
@ProviderType
public interface StandaloneMigrationService extends MigrationService, AutoCloseable {
    /** As registering a {@link DeviceStateHandler} service: its section travels in the switch's package. */
    void addDeviceStateHandler(DeviceStateHandler handler);

    void removeDeviceStateHandler(DeviceStateHandler handler);

    /** As registering a {@link MigrationListener} service: told of every state change, in order, on one thread. */
    void addMigrationListener(MigrationListener listener);

    void removeMigrationListener(MigrationListener listener);

    /**
     * As stopping the OSGi component: closes the listeners, cancels the running migrations and waits (up to 30 s
     * each) until their threads have let go of the blocks, and ends the service's own threads. Call it before
     * closing the registry.
     */
    @Override
    void close();
}
