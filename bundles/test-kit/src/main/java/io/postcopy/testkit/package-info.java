/**
 * Test kit for the bundles' tests and the itests: {@link io.postcopy.testkit.Await} (bounded polling),
 * {@link io.postcopy.testkit.SourceImage} (deterministic page content), {@link io.postcopy.testkit.VcpuReader}
 * (threads that fault on guest pages in native code) and {@link io.postcopy.testkit.RequestLog} (what a page
 * requester was asked). Not for production use.
 */
@Export
@Version("1.0.0")
package io.postcopy.testkit;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
