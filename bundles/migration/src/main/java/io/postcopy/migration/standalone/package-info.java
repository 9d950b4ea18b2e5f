/**
 * The migration service without an OSGi framework (tests, benchmarks, embedding in plain Java). In OSGi use the services; this package
 * is apart from the API package so that the API holds no implementation.
 */
@Export
@Version("1.2.0")
package io.postcopy.migration.standalone;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
