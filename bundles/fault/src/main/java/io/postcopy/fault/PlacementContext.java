package io.postcopy.fault;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.Userfaultfd;
import org.osgi.annotation.versioning.ProviderType;

/**
 * What a {@link PlacementBackend} works with for one block of one incoming migration. The fault service
 * owns all of it (including the temporary page), so a backend holds no per-block state and can be swapped
 * between two placements without losing a page.
 */
@ProviderType
public interface PlacementContext {
    RamBlock block();

    /** The migration's userfaultfd; the block is registered MISSING on it once LISTENING. */
    Userfaultfd uffd();

    /** Whether the block is registered on {@link #uffd()} (from ADVISE until cleanup): placements need it. */
    boolean registered();

    /**
     * The seed's {@code postcopy_get_tmp_page}: a page-aligned scratch area of the block's page size,
     * allocated on first use and freed at cleanup. One per block; callers serialise on the context.
     */
    long tmpPage();

    /** Bytes of the current huge page gathered in {@link #tmpPage()}, and which host page it is (-1: none). */
    long tmpFill();

    long tmpHostPage();

    void setTmp(long hostPage, long fill);

    /**
     * Reports that {@code [offset, offset+length)} (block page aligned) is now present in guest memory:
     * updates the received bitmap, the counters and the fault latencies. {@code zero} for zero pages.
     */
    void placed(long offset, long length, boolean zero);

    /** Counts pages found already present (EEXIST): a normal race, not an error. */
    void raced(long pages);
}
