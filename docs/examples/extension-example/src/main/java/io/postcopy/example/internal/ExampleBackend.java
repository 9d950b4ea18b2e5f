package io.postcopy.example.internal;

import io.postcopy.fault.PlacementBackend;
import io.postcopy.fault.PlacementContext;
import io.postcopy.ramblock.RamBlock;
import java.util.concurrent.atomic.AtomicLong;
import org.osgi.service.component.annotations.Component;

/**
 * The minimal placement backend of docs/extending.md: 4 KiB pages in non-hugetlb blocks, one UFFDIO_COPY
 * (or UFFDIO_ZEROPAGE) per run. Ranked 50, above the stock {@code anon} backend (0), so blocks it supports
 * switch to it while it is bound. It counts its placements and shows the count in {@link #supportedKinds()}
 * (what {@code postcopy:backends} and {@code FaultService.backends()} print), so a test can see it was used.
 * The counter is statistics only: nothing a placement needs is kept outside the {@link PlacementContext}.
 */
@Component(service = PlacementBackend.class, property = "service.ranking:Integer=50")
public class ExampleBackend implements PlacementBackend {
    private static final long PAGE = 4096;

    private final AtomicLong placements = new AtomicLong();

    @Override
    public String name() {
        return "example";
    }

    @Override
    public boolean supports(RamBlock block) {
        return block.pageSize() == PAGE && block.backing() != RamBlock.Backing.HUGETLB;
    }

    @Override
    public String supportedKinds() {
        return "anonymous, memfd (4 KiB); " + placements.get() + " placements";
    }

    @Override
    public long place(PlacementContext ctx, long offset, long src, long length) {
        long placed = ctx.uffd().copyRun(ctx.block().hostAddress() + offset, src, length, PAGE, 0);
        if (placed != length) ctx.raced((length - placed) / PAGE); // pages already present: a normal race
        ctx.placed(offset, length, false);
        placements.incrementAndGet();
        return placed;
    }

    @Override
    public long placeZero(PlacementContext ctx, long offset, long length) {
        long placed = ctx.uffd().zeropageRun(ctx.block().hostAddress() + offset, length, PAGE, 0);
        if (placed != length) ctx.raced((length - placed) / PAGE);
        ctx.placed(offset, length, true);
        placements.incrementAndGet();
        return placed;
    }

    @Override
    public void discard(PlacementContext ctx, long offset, long length) {
        ctx.block().discard(offset, length); // MADV_DONTNEED, or a punched hole for files
    }

    @Override
    public String toString() {
        return "ExampleBackend";
    }
}
