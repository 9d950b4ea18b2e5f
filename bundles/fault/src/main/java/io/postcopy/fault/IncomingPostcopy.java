package io.postcopy.fault;

import io.postcopy.ramblock.RamBlock;
import java.util.List;
import java.util.Optional;
import org.osgi.annotation.versioning.ProviderType;

/**
 * One incoming postcopy migration over a set of RAM blocks: the seed's {@code MigrationIncomingState}.
 * Calls must follow {@link IncomingState}'s order; a call in the wrong state throws
 * {@link PostcopyException} and changes nothing. Placement and precopy loads may come from several
 * threads at once; the state transitions from one thread (the migration's stream reader).
 */
@ProviderType
public interface IncomingPostcopy extends AutoCloseable {
    String id();

    IncomingState state();

    List<RamBlock> blocks();

    /**
     * NONE → ADVISE: the seed's {@code postcopy_ram_incoming_init}. Checks host support, empties every block,
     * drops mlock and registers the blocks MISSING on a new userfaultfd (so that precopy pages are placed in
     * the kernel too); nothing may touch the blocks until {@link #listen()} starts the fault thread.
     */
    void advise();

    /**
     * Loads precopy pages (ADVISE or DISCARD, before the fault thread runs), marking them received: pages not
     * yet present are placed by the backend, pages sent again by a later pass are overwritten in place.
     * {@code src} holds {@code length} bytes of target pages.
     */
    void loadPrecopyPages(RamBlock block, long offset, long src, long length);

    /** As {@link #loadPrecopyPages}, for zero pages. */
    void loadPrecopyZero(RamBlock block, long offset, long length);

    /** ADVISE → DISCARD: the seed's {@code postcopy_ram_prepare_discard}. Turns THP off on every block. */
    void prepareDiscard();

    /**
     * The seed's {@code postcopy_ram_discard_range}: drops {@code [offset, offset+length)} of the block so that
     * it faults and is fetched again. Validated (page-aligned, inside the used length, no overflow) before
     * anything is touched. Enters DISCARD from ADVISE if needed.
     */
    void discard(String idstr, long offset, long length);

    /**
     * {@link #discard(String, long, long)} of {@code n} ranges of one block, every one validated before any is
     * dropped (one bad range: PostcopyException, nothing discarded); the backend drops them in as few system calls
     * as it can. The arrays are the caller's to reuse after the call.
     */
    void discard(String idstr, long[] offsets, long[] lengths, int n);

    /**
     * ADVISE/DISCARD → LISTENING: the seed's {@code postcopy_ram_enable_notify}. Starts the fault thread on
     * the userfaultfd opened at ADVISE and inhibits the balloon.
     */
    void listen();

    /** LISTENING → RUNNING: the guest runs; faults now come from it. */
    void run();

    /**
     * The seed's {@code postcopy_place_page}: places target pages from native memory at {@code src}.
     * LISTENING or RUNNING. Returns the bytes newly made present (pages already present are skipped).
     */
    long placePages(RamBlock block, long offset, long src, long length);

    /** The seed's {@code postcopy_place_page_zero}: places zero pages. */
    long placeZeroPages(RamBlock block, long offset, long length);

    /**
     * Postcopy recovery: block {@code idstr}'s received pages in QEMU's RECV_BITMAP layout (one bit per 4 KiB
     * target page, little-endian 64-bit words).
     */
    java.nio.ByteBuffer receivedBitmap(String idstr);

    /**
     * Postcopy recovery, after RESUME: asks the requester again for every page requested and not yet received
     * (a guest thread still waits on each). Returns how many.
     */
    int resendRequests() throws java.io.IOException;

    /**
     * Postcopy recovery, at a pause: forgets host pages partly gathered from the lost connection (they are not
     * received; the source sends them again whole).
     */
    void dropPartialPages();

    /** True when every page of every block is present. */
    boolean complete();

    /** The pages not yet present. */
    MissingPages missing();

    FaultStatistics statistics();

    /** The failure that ended this migration (e.g. a fault outside every block, a broken return path). */
    Optional<Throwable> failure();

    /**
     * → END: the seed's {@code postcopy_ram_incoming_cleanup}. Waits for the placements in flight and refuses
     * later ones, then unregisters (which wakes every thread blocked on a missing page into a page that never
     * arrived: pause the guest first, see {@code GuestControl.requestPause} in the migration API), restores THP,
     * stops the fault thread, closes descriptors, releases the balloon, restores mlock, frees temporary pages,
     * and lets go of the blocks (their leases). Idempotent. Returns the pages that never arrived (empty on success).
     */
    MissingPages cleanup();

    /** Same as {@link #cleanup()}. */
    @Override
    default void close() {
        cleanup();
    }
}
