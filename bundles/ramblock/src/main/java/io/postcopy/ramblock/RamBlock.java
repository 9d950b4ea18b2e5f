package io.postcopy.ramblock;

import java.nio.charset.StandardCharsets;
import org.osgi.annotation.versioning.ProviderType;

/**
 * One block of guest RAM: an immutable view of where it lives. Blocks are made by a {@link RamBlockRegistry};
 * once removed from it, a block's memory may be gone and {@link #discard} refuses to touch it.
 *
 * <p><b>Lifetime.</b> Whoever touches the memory at {@link #hostAddress()} holds a {@link #lease lease} while it
 * may do so; the registry refuses to remove a leased block, or, when forced, asks the holders to let go and waits
 * for them. An address read from a block without a lease may be unmapped (and reused) at any moment.
 *
 * <p>Three coordinates meet here: the <em>offset</em> of the block in the global RAM address space (blocks
 * are laid out in creation order, each aligned to its page size), the <em>host address</em> where its
 * memory is mapped in this process, and offsets <em>within</em> the block, which are what the wire carries.
 */
@ProviderType
public interface RamBlock {
    /** Longest idstr in bytes: the wire gives it a one-byte length. */
    int MAX_IDSTR_BYTES = 255;

    /** Where a block's memory comes from. */
    enum Backing {
        /** Private anonymous memory that the registry mapped. */
        ANONYMOUS,
        /** A memfd (shmem) mapped shared; {@link #fd()} is the file. */
        MEMFD,
        /** A hugetlbfs memfd of the default huge page size; {@link #fd()} is the file. */
        HUGETLB,
        /** Memory mapped by someone else and merely registered; never unmapped by the registry. */
        ADOPTED
    }

    /** The block's name as on the wire (1..255 bytes of UTF-8, no NUL). */
    String idstr();

    /** Offset of the block's first byte in the global RAM address space. */
    long offset();

    /** Host address of the block's first byte. */
    long hostAddress();

    /** Bytes in use by the guest; discards and page requests must fall inside them. */
    long usedLength();

    /** Bytes mapped for the block ({@code >= usedLength}). */
    long maxLength();

    /** The block's page size: the unit of faults, placements and discards. */
    long pageSize();

    Backing backing();

    /** The backing file descriptor of MEMFD and HUGETLB blocks, -1 otherwise. */
    int fd();

    /** True when {@code hostAddr} lies in {@code [hostAddress, hostAddress + maxLength)}. */
    default boolean contains(long hostAddr) {
        // Unsigned compare: one branch, and addresses below hostAddress wrap to huge values.
        return Long.compareUnsigned(hostAddr - hostAddress(), maxLength()) < 0;
    }

    /** The offset of {@code hostAddr} within this block; the address must be {@link #contains contained}. */
    default long offsetOf(long hostAddr) {
        if (!contains(hostAddr))
            throw new IllegalArgumentException(String.format("0x%x is not in block %s", hostAddr, idstr()));
        return hostAddr - hostAddress();
    }

    /** The number of pages in the used length. */
    default long pages() {
        return usedLength() / pageSize();
    }

    /**
     * Drops the pages of {@code [offset, offset + length)} (offsets within the block) so that the next access
     * faults, as the seed's {@code ram_block_discard_range}: the range must be page-aligned and lie within the
     * used length, which is checked before any memory is touched. Owned blocks discard through their mapping
     * (MADV_DONTNEED, or a punched hole for files); adopted blocks with MADV_DONTNEED.
     *
     * @throws IllegalArgumentException when the range is unaligned or outside the block
     * @throws IllegalStateException when the block has been removed
     * @throws io.postcopy.uffd.UffdException when the kernel refuses
     */
    void discard(long offset, long length);

    /**
     * {@link #discard(long, long)} of {@code n} ranges {@code [offsets[i], offsets[i] + lengths[i])}, every one checked
     * before any memory is touched; owned and adopted blocks drop them with one system call per up to 1024 ranges
     * ({@link io.postcopy.uffd.NativeMemory#madvise(long[], long[], int, int)}), file-backed huge pages one by one.
     *
     * @throws IllegalArgumentException when a range is unaligned or outside the block (nothing discarded)
     */
    default void discard(long[] offsets, long[] lengths, int n) {
        for (int i = 0; i < n; i++) checkDiscard(offsets[i], lengths[i]);
        for (int i = 0; i < n; i++) discard(offsets[i], lengths[i]);
    }

    /** Throws IllegalArgumentException unless {@code [offset, offset + length)} is a page-aligned range of the used length. */
    default void checkDiscard(long offset, long length) {
        if (offset < 0 || length <= 0 || offset > usedLength() - length)
            throw new IllegalArgumentException(String.format("discard [%d, +%d) outside block %s of %d used bytes",
                    offset, length, idstr(), usedLength()));
        if (offset % pageSize() != 0 || length % pageSize() != 0)
            throw new IllegalArgumentException(String.format("discard [%d, +%d) in block %s is not aligned to its page size %d",
                    offset, length, idstr(), pageSize()));
    }

    /**
     * Holds the block's memory mapped until the lease is closed.
     *
     * @param holder who holds it, named when a removal is refused (e.g. {@code migration out-3})
     * @param letGo asked, at most once, to make the holder let go when the block is removed by force (cancel the
     *     migration, stop the workload); it must not wait for that, only start it. Null: the holder cannot be
     *     asked, a forced removal waits for it until its time runs out.
     * @throws IllegalStateException when the block has been removed or is being removed
     */
    RamBlockLease lease(String holder, Runnable letGo);

    /** The holders of the open leases, oldest first (a snapshot). */
    java.util.List<String> holders();

    /** Checks an idstr as the wire needs it: 1..255 bytes of UTF-8 and no NUL (QEMU keeps C strings). */
    static String checkIdstr(String idstr) {
        if (idstr == null) throw new IllegalArgumentException("idstr is null");
        int bytes = idstr.getBytes(StandardCharsets.UTF_8).length;
        if (bytes == 0 || bytes > MAX_IDSTR_BYTES)
            throw new IllegalArgumentException("idstr \"" + idstr + "\" is " + bytes + " bytes of UTF-8; must be 1.."
                    + MAX_IDSTR_BYTES);
        if (idstr.indexOf('\0') >= 0) throw new IllegalArgumentException("idstr \"" + idstr + "\" contains NUL");
        return idstr;
    }
}
