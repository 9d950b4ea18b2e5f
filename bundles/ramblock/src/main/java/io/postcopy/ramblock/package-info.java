/**
 * The RAM-block registry: named blocks of guest RAM (the seed's {@code RAMBlock}s), the lock-free
 * lookup of a host address to its block ({@code qemu_ram_block_from_host}), ordered iteration
 * ({@code qemu_ram_foreach_block}), listeners for added and removed blocks, and {@link
 * io.postcopy.ramblock.PageBitmap}, the per-block page bitmap that discards and fault de-duplication use.
 *
 * <p>Outside OSGi, {@link io.postcopy.ramblock.RamBlocks#newRegistry()} gives a registry of one's own.
 */
@Export
@Version("1.2.0")
package io.postcopy.ramblock;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
