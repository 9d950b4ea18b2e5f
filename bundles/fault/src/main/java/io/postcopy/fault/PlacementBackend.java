package io.postcopy.fault;

import io.postcopy.ramblock.RamBlock;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * Places arriving pages into guest memory: the seed's {@code postcopy_place_page} and
 * {@code postcopy_place_page_zero}. Register implementations as OSGi services; for each block the fault
 * service uses the highest-ranked ({@code service.ranking}) backend that {@link #supports supports} it.
 *
 * <p>A backend must be stateless across calls (state lives in the {@link PlacementContext}): the fault
 * service may switch a block to another backend between any two placements. It never switches during one.
 * All offsets are byte offsets within the block; {@code src} points at contiguous target pages (4 KiB).
 */
@ConsumerType
public interface PlacementBackend {
    /** A short name for the shell and logs, e.g. "anon". */
    String name();

    /** Whether this backend can place pages of the block (its backing and page size). */
    boolean supports(RamBlock block);

    /** The block kinds this backend handles, for display (e.g. "anonymous, memfd (4 KiB)"). */
    String supportedKinds();

    /** Called when the backend becomes the one used for a block. */
    default void prepare(PlacementContext ctx) {}

    /** Called when the backend stops being used for a block (after its last placement there finished). */
    default void cleanup(PlacementContext ctx) {}

    /** Places {@code length} bytes of target pages at {@code offset}; returns the bytes newly made present. */
    long place(PlacementContext ctx, long offset, long src, long length);

    /** Places zero pages over {@code [offset, offset+length)}; returns the bytes newly made present. */
    long placeZero(PlacementContext ctx, long offset, long length);

    /** Drops {@code [offset, offset+length)} (validated: aligned to the block page size, inside the block). */
    void discard(PlacementContext ctx, long offset, long length);

    /**
     * Drops {@code n} ranges {@code [offsets[i], offsets[i] + lengths[i])}, all validated as for {@link #discard}. A
     * backend that can drop them in one call (the anonymous one: one system call per 1024 ranges) overrides this;
     * by default each goes through {@link #discard}.
     */
    default void discard(PlacementContext ctx, long[] offsets, long[] lengths, int n) {
        for (int i = 0; i < n; i++) discard(ctx, offsets[i], lengths[i]);
    }
}
