package io.postcopy.ramblock;

import java.util.List;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The guest's RAM blocks: the seed's {@code ram_list}. Lookups ({@link #blockOf}, {@link #byName},
 * {@link #blocks}) take no lock and see a consistent snapshot while other threads add and remove blocks.
 */
@ProviderType
public interface RamBlockRegistry {
    /** Creates a block of {@code size} bytes (used = max) with fresh zeroed memory. */
    default RamBlock create(String idstr, long size, RamBlock.Backing backing) {
        return create(idstr, size, size, backing);
    }

    /**
     * Creates a block mapping {@code maxLength} bytes of fresh zeroed memory of which {@code usedLength} are
     * in use. Both lengths are multiples of the backing's page size (the huge page size for HUGETLB).
     *
     * @throws IllegalArgumentException for a bad or duplicate idstr, bad lengths, or the ADOPTED backing
     * @throws io.postcopy.uffd.UffdException when the memory cannot be mapped
     */
    RamBlock create(String idstr, long usedLength, long maxLength, RamBlock.Backing backing);

    /**
     * Registers memory mapped by someone else. The range must be aligned to {@code pageSize} and must not
     * overlap another block; the registry never unmaps it.
     */
    RamBlock adopt(String idstr, long hostAddress, long length, long pageSize);

    /**
     * Removes a block nobody holds: lookups stop finding it, listeners are told, then an owned block's memory is
     * unmapped.
     *
     * @return the removed block
     * @throws IllegalArgumentException when no block has that name
     * @throws RamBlockInUseException when a {@link RamBlock#lease lease} on it is open (it names the holders);
     *     nothing changes
     * @throws IllegalStateException when another caller is removing it
     */
    RamBlock remove(String idstr);

    /**
     * Removes a block by force: no new lease is granted, every holder is asked to let go, and the block is
     * removed once the last lease closes. A holder that has not let go within {@code wait} keeps the block: it
     * stays registered and mapped, and new leases are granted again.
     *
     * @throws IllegalArgumentException when no block has that name
     * @throws RamBlockInUseException when leases are still open after {@code wait} (it names the holders)
     * @throws IllegalStateException when another caller is removing it
     */
    RamBlock remove(String idstr, java.time.Duration wait);

    /**
     * Removes every block by force, newest first, each as {@link #remove(String, java.time.Duration)} with
     * {@link #REMOVE_ALL_WAIT}. A block whose holders do not let go stays mapped (never unmapped under a user).
     *
     * @throws RamBlockInUseException for the first block that stayed, after trying every block
     */
    void removeAll();

    /** How long {@link #removeAll()} waits for the holders of each block. */
    java.time.Duration REMOVE_ALL_WAIT = java.time.Duration.ofSeconds(30);

    /** The blocks in RAM-offset order (creation order), as one snapshot; unmodifiable. */
    List<RamBlock> blocks();

    /** The block named {@code idstr}, or null. Lock-free. */
    RamBlock byName(String idstr);

    /**
     * The block whose mapping contains {@code hostAddress}, or null: the seed's {@code qemu_ram_block_from_host}.
     * Lock-free, O(log n), allocation-free.
     */
    RamBlock blockOf(long hostAddress);

    /** Adds a listener; it is first told of every block already present, in order. */
    void addListener(RamBlockListener listener);

    void removeListener(RamBlockListener listener);
}
