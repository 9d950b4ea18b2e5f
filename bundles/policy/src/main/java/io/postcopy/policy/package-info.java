/**
 * What the host must do around postcopy, as in the seed: inhibit memory ballooning while pages may be
 * missing ({@code qemu_balloon_inhibit}), drop {@code mlockall} before userfaultfd use and restore it after,
 * and keep transparent huge pages off a range while it is being discarded.
 *
 * <p>Each is an OSGi service configured through Config Admin; {@link io.postcopy.policy.Policies} makes
 * them without a framework.
 */
@Export
@Version("1.0.0")
package io.postcopy.policy;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
