/**
 * The destination side of postcopy: one {@link io.postcopy.fault.IncomingPostcopy} per incoming migration
 * (the seed's {@code MigrationIncomingState}), its fault thread, de-duplicated page requests through a
 * {@link io.postcopy.fault.PageRequester}, and placement through hot-swappable
 * {@link io.postcopy.fault.PlacementBackend}s.
 */
@Export
@Version("3.0.0")
package io.postcopy.fault;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
