package io.postcopy.migration;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * Device state that migrates with the RAM: each handler becomes one device section (FULL) inside the
 * {@code PACKAGED} blob sent at the switch, and is delivered to the handler with the same idstr and
 * instance id on the destination. Register as an OSGi service (whiteboard), or add it to a plain-Java
 * {@link MigrationService}. Sections without a handler on the destination are kept as opaque bytes.
 */
@ConsumerType
public interface DeviceStateHandler {
    /** The section's idstr: 1..255 printable ASCII bytes (e.g. {@code "mgmt/vm-config"}). */
    String idstr();

    default int instanceId() {
        return 0;
    }

    /** The version of the layout {@link #save} writes. */
    default int versionId() {
        return 1;
    }

    /** Writes the state on the source, with the guest paused. */
    void save(OutputStream out) throws IOException;

    /** Reads the state on the destination before the guest resumes; {@code versionId} is the source's. */
    void load(InputStream in, int versionId) throws IOException;
}
