/**
 * Live migration of RAM blocks between two endpoints over TCP in QEMU 7.2's wire format: a source
 * ({@link io.postcopy.migration.OutgoingMigration}: precopy iterations with dirty tracking, the switch with
 * discards, postcopy with page requests jumping the queue) and a destination
 * ({@link io.postcopy.migration.IncomingMigration}: blocks created from the stream, pages placed atomically
 * through the fault service, page requests on the return path). Device state of third-party
 * {@link io.postcopy.migration.DeviceStateHandler}s travels in the {@code PACKAGED} blob.
 */
@Export
@Version("3.1.0")
package io.postcopy.migration;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
