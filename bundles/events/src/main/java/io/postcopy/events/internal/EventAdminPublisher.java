package io.postcopy.events.internal;

import io.postcopy.migration.MigrationEvent;
import io.postcopy.migration.MigrationListener;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.event.Event;
import org.osgi.service.event.EventAdmin;

/**
 * Posts every migration state change to OSGi Event Admin on {@code io/postcopy/migration/<STATE>} (asynchronously:
 * a slow handler never holds up the migration service's event thread). A bundle of its own, not part of the migration
 * bundle: Event Admin arriving at run time would rewire a bundle that imports its package optionally, and a rewired
 * migration bundle ends its migrations.
 */
@Component(service = MigrationListener.class)
public class EventAdminPublisher implements MigrationListener {
    private final EventAdmin eventAdmin;

    @Activate
    public EventAdminPublisher(@Reference EventAdmin eventAdmin) {
        this.eventAdmin = eventAdmin;
    }

    @Override
    public void migrationChanged(MigrationEvent e) {
        eventAdmin.postEvent(new Event(e.topic(), e.properties()));
    }
}
