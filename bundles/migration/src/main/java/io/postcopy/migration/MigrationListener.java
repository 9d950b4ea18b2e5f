package io.postcopy.migration;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Told of every state a migration enters (whiteboard: register a service of this type; the migration service binds
 * it). Calls come in order, one at a time, on the service's own event thread: a listener that blocks delays the
 * events after it, never a migration. The same events go to OSGi Event Admin ({@link MigrationEvent#topic()}) when
 * it is installed, and to the JMX notifications of {@code io.postcopy:type=Migration,id=...}.
 *
 * @since 2.0
 */
@ConsumerType
@FunctionalInterface
public interface MigrationListener {
    void migrationChanged(MigrationEvent event);
}
