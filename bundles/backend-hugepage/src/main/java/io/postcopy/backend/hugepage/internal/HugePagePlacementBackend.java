package io.postcopy.backend.hugepage.internal;

import io.postcopy.fault.PlacementBackend;
import io.postcopy.fault.PlacementContext;
import io.postcopy.fault.PostcopyException;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.metatype.annotations.Designate;

/**
 * Places hugetlbfs blocks one whole huge page at a time, as the seed does with {@code postcopy_get_tmp_page}:
 * the source sends the target pages (4 KiB) of a huge page contiguously and in order; they are gathered in
 * the block's temporary huge page and the page goes in with one atomic UFFDIO_COPY of the huge page size
 * once complete, which wakes every thread faulting anywhere in it. Hugetlb has no UFFDIO_ZEROPAGE: zero
 * target pages are zeroes written into the temporary page, and a huge page sent as one zero run is copied
 * from a never-written (zero-page backed) anonymous mapping.
 *
 * <p>Invariant: the gathering state (which huge page, how many bytes) lives in the {@link PlacementContext}
 * and is only read or written while holding the context's monitor, so concurrent placements on one block are
 * serialised and a backend swapped out between two target pages of a huge page loses nothing: whoever places
 * the next target page continues the same temporary page. A target page that does not continue the huge page
 * being gathered is a protocol violation (QEMU: "Non-same host page") and is refused without changing state;
 * a whole huge page placed in one piece is not gathered and may come at any time.
 */
@Component(service = PlacementBackend.class, configurationPid = HugePagePlacementBackend.PID)
@Designate(ocd = HugePageBackendConfig.class)
public class HugePagePlacementBackend implements PlacementBackend {
    public static final String PID = "io.postcopy.backend.hugepage";
    private static final long TARGET_PAGE = 4096;

    /** Source of whole zero huge pages; never written, so every read maps the kernel's zero page. */
    private volatile Mapping zeroes;

    public HugePagePlacementBackend() {}

    @Activate
    void activate(HugePageBackendConfig config) {
        // nothing to set up; the ranking (a service property) is read by the fault service
    }

    @Modified
    void modified(HugePageBackendConfig config) {
        // SCR updates the service.ranking property; the fault service rebinds at the new ranking
    }

    @Deactivate
    void deactivate() {
        // the fault service unbinds this backend (waiting for placements in flight) before deactivation
        Mapping z = zeroes;
        zeroes = null;
        if (z != null) z.close();
    }

    @Override
    public String name() {
        return "hugepage";
    }

    @Override
    public boolean supports(RamBlock block) {
        long ps = block.pageSize();
        return block.backing() == RamBlock.Backing.HUGETLB && ps > TARGET_PAGE && Long.bitCount(ps) == 1
                && ps == NativeMemory.hugePageSize();
    }

    @Override
    public String supportedKinds() {
        return "hugetlbfs memfd (" + (NativeMemory.hugePageSize() >> 10) + " KiB huge pages)";
    }

    @Override
    public long place(PlacementContext ctx, long offset, long src, long length) {
        return gather(ctx, offset, src, length);
    }

    @Override
    public long placeZero(PlacementContext ctx, long offset, long length) {
        return gather(ctx, offset, 0, length);
    }

    /** {@code src == 0}: zero target pages. Returns the bytes newly made present (whole huge pages). */
    private long gather(PlacementContext ctx, long offset, long src, long length) {
        final long huge = ctx.block().pageSize();
        final long mask = huge - 1;
        long newly = 0;
        synchronized (ctx) {
            long hp = ctx.tmpHostPage(), fill = ctx.tmpFill();
            for (long pos = offset, end = offset + length; pos < end; ) {
                long host = pos & ~mask, within = pos - host;
                long n = Math.min(end - pos, huge - within);
                long from = src == 0 ? 0 : src + (pos - offset);
                if (within == 0) {
                    if (n == huge && (from & (TARGET_PAGE - 1)) == 0) {
                        // a whole huge page in one piece: no need to gather it, and it may come from another
                        // channel (postcopy-preempt) while this block's main stream gathers a different one
                        newly += copy(ctx, host, from == 0 ? zeroSource(huge) : from, huge, from == 0);
                        pos += n;
                        continue;
                    }
                    if (hp >= 0) throw nonSameHostPage(ctx, hp, fill, pos);
                    hp = host;
                    fill = 0;
                } else if (hp != host || fill != within) {
                    throw nonSameHostPage(ctx, hp, fill, pos);
                }
                long tmp = ctx.tmpPage() + within;   // the temporary page is never registered: plain stores
                if (from == 0) NativeMemory.fill(tmp, n, (byte) 0);
                else NativeMemory.copy(from, tmp, n);
                fill += n;
                pos += n;
                if (fill == huge) {
                    // publish "nothing gathered" first: if the copy throws, the next page starts clean
                    ctx.setTmp(-1, 0);
                    hp = -1;
                    fill = 0;
                    newly += copy(ctx, host, ctx.tmpPage(), huge, false);
                } else {
                    ctx.setTmp(hp, fill);
                }
            }
        }
        return newly;
    }

    /** One atomic UFFDIO_COPY of a whole huge page; EEXIST means another placement won the race. */
    private static long copy(PlacementContext ctx, long host, long from, long huge, boolean zero) {
        long dst = ctx.block().hostAddress() + host;
        long placed;
        if (!ctx.registered()) {
            NativeMemory.nativeCopy(from, dst, huge);   // not (or no longer) registered: nothing can block
            placed = huge;
        } else {
            placed = ctx.uffd().copyRun(dst, from, huge, huge, 0);
            if (placed == 0) ctx.raced(1);
        }
        ctx.placed(host, huge, zero);
        return placed;
    }

    private static PostcopyException nonSameHostPage(PlacementContext ctx, long hp, long fill, long pos) {
        return new PostcopyException(String.format(
                "block %s: target page at offset 0x%x does not continue the huge page being gathered "
                        + "(%s); the source must send a huge page's target pages contiguously and in order",
                ctx.block().idstr(), pos,
                hp < 0 ? "none" : String.format("0x%x, %d bytes so far", hp, fill)));
    }

    private long zeroSource(long huge) {
        Mapping z = zeroes;
        if (z == null || z.length() < huge) {
            synchronized (this) {
                z = zeroes;
                if (z == null || z.length() < huge) zeroes = z = Mapping.anonymous(huge);
            }
        }
        return z.address();
    }

    @Override
    public void discard(PlacementContext ctx, long offset, long length) {
        synchronized (ctx) {
            long hp = ctx.tmpHostPage();
            if (hp >= offset && hp < offset + length) ctx.setTmp(-1, 0);   // a half-gathered page there is stale now
        }
        ctx.block().discard(offset, length);   // hugetlb: fallocate(PUNCH_HOLE)
    }

    @Override
    public String toString() {
        return "HugePagePlacementBackend";
    }
}
