package io.postcopy.workload;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.internal.PageImage;
import java.util.concurrent.TimeUnit;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A running guest stand-in: {@link WorkloadOptions#threads()} vCPU threads reading and writing one block,
 * started by {@link Workloads#start}.
 *
 * <p><b>Content.</b> The block is seen as pages of {@link #PAGE_SIZE} bytes. A write stores in a page the image
 * of (page index, generation): word 0 holds the generation, word 1 the content seed, and every further 8-byte
 * word a hash of (seed, page, generation, word index). So {@link #verify(RamBlock)} can check memory alone: each
 * page is all zero (never written) or a consistent image. Writes to one page are serialised; a page is never
 * left half-written while the workload is paused or stopped.
 *
 * <p><b>Native access only.</b> Block memory is touched solely through {@code memcpy} called as a native
 * function, between the block and a private buffer per thread, so a thread that blocks on a userfaultfd fault
 * blocks in native code and does not hold up JVM safepoints.
 *
 * <p>{@link #pause()} and {@link #resume()} are the surface a migration's guest-control SPI adapts to.
 */
@ProviderType
public interface Workload extends AutoCloseable {
    /** The unit of content, verification and digests: 4 KiB, whatever the block's own page size. */
    int PAGE_SIZE = 4096;

    RamBlock block();

    WorkloadOptions options();

    /**
     * Stops every thread between accesses and returns once each has finished its current access and parked,
     * so the block's memory no longer changes. A thread blocked on a fault finishes that access first; pause
     * waits for it (interrupts are remembered, not obeyed). Pausing a paused or ended workload returns at once.
     */
    void pause();

    /**
     * Asks every thread to pause and returns at once, without waiting for a thread blocked on a missing page.
     * A read that returns after this is abandoned (not counted, not checked): it may have been woken into a page
     * that never arrived. {@link #pause()} then waits for every thread to park.
     */
    void requestPause();

    /** Lets paused threads go on. */
    void resume();

    boolean isPaused();

    /** Ends the workload: threads finish their current access and exit; returns when all have. Idempotent. */
    void stop();

    /** Same as {@link #stop()}. */
    @Override
    default void close() {
        stop();
    }

    /**
     * When the workload started.
     *
     * @since 1.2
     */
    java.time.Instant startedAt();

    /** True until every thread has exited (stopped, duration over, access limit reached, or failed). */
    boolean isRunning();

    /** Waits for the workload to end by itself; true when it has ended. */
    boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException;

    /** The first exception a thread died of, or null. */
    Throwable failure();

    /** Pages read so far. */
    long reads();

    /** Pages written so far. */
    long writes();

    /** Distinct pages read or written at least once. */
    long pagesTouched();

    /** Accesses that took longer than {@link WorkloadOptions#stallThreshold()}. */
    long stalls();

    /** Pages read that were neither zero nor a consistent image (only with {@link WorkloadOptions#checkReads()}). */
    long readMismatches();

    /** The first page a read found inconsistent, -1 when none. */
    long firstReadMismatch();

    /** The access times of all threads so far, merged now. */
    LatencySummary latency();

    /**
     * Writes the generation-0 image of {@code seed} into every page of the block's used length: known content
     * for a migration source. Call it while nothing else writes the block.
     */
    static void fill(RamBlock block, long seed) {
        PageImage.fill(block, seed);
    }

    /**
     * Checks every page of the block's used length: all zero, or a consistent (page, generation) image of any
     * seed. Call it while nothing writes the block (a paused or stopped workload).
     */
    static VerifyResult verify(RamBlock block) {
        return PageImage.verify(block, false, 0);
    }

    /** As {@link #verify(RamBlock)}, and every non-zero page must carry {@code seed}. */
    static VerifyResult verify(RamBlock block, long seed) {
        return PageImage.verify(block, true, seed);
    }
}
