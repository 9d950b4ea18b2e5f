/**
 * A guest stand-in: threads acting as vCPUs that read and write a {@link io.postcopy.ramblock.RamBlock} in a
 * chosen {@link io.postcopy.workload.AccessPattern}, time every access (so a postcopy destination's fault
 * latency is measured where a guest would feel it), write content that can be checked without the other side
 * ({@link io.postcopy.workload.Workload#verify}), and pause/resume as a guest does at the switch.
 * {@link io.postcopy.workload.PageDigest} gives the per-page SHA-256 of a block in the codec inspector's format.
 *
 * <p>Every access to block memory is a native {@code memcpy}: the memory may be registered with userfaultfd,
 * and a thread that faults while running Java code would hold up every JVM safepoint.
 */
@Export
@Version("1.2.0")
package io.postcopy.workload;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
