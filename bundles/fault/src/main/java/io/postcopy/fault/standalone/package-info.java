/**
 * The fault service without an OSGi framework (tests, benchmarks, embedding in plain Java). In OSGi use the services; this package
 * is apart from the API package so that the API holds no implementation.
 */
@Export
@Version("1.1.0")
package io.postcopy.fault.standalone;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
