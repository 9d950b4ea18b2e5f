package io.postcopy.fault.test;

import io.postcopy.fault.PlacementBackend;
import io.postcopy.fault.PlacementContext;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;

/**
 * A minimal placement backend that really places pages through the kernel, for the fault bundle's own tests:
 * a run with one UFFDIO_COPY, a zero run with one UFFDIO_ZEROPAGE on the migration's userfaultfd, pages found
 * present (EEXIST) counted as races, discards through the block. It is the anon backend's logic for 4 KiB
 * pages; a copy because the fault bundle cannot test-depend on backend-anon (which depends on it). Stateless:
 * called by whichever thread places (fault service callers), serialised per block by the fault service.
 */
public final class TestPlacementBackend implements PlacementBackend {
    private static final long PAGE = 4096;
    private final String name;

    public TestPlacementBackend() {
        this("test");
    }

    public TestPlacementBackend(String name) {
        this.name = name;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public boolean supports(RamBlock block) {
        return block.pageSize() == PAGE && block.backing() != RamBlock.Backing.HUGETLB && NativeMemory.pageSize() == PAGE;
    }

    @Override
    public String supportedKinds() {
        return "anonymous, memfd (4 KiB pages), for tests";
    }

    @Override
    public long place(PlacementContext ctx, long offset, long src, long length) {
        long placed = ctx.uffd().copyRun(ctx.block().hostAddress() + offset, src, length, PAGE, 0);
        placed(ctx, offset, length, placed, false);
        return placed;
    }

    @Override
    public long placeZero(PlacementContext ctx, long offset, long length) {
        long placed = ctx.uffd().zeropageRun(ctx.block().hostAddress() + offset, length, PAGE, 0);
        placed(ctx, offset, length, placed, true);
        return placed;
    }

    private static void placed(PlacementContext ctx, long offset, long length, long placed, boolean zero) {
        if (placed != length) ctx.raced((length - placed) / PAGE);
        ctx.placed(offset, length, zero);
    }

    @Override
    public void discard(PlacementContext ctx, long offset, long length) {
        ctx.block().discard(offset, length);
    }

    @Override
    public String toString() {
        return "TestPlacementBackend[" + name + "]";
    }
}
