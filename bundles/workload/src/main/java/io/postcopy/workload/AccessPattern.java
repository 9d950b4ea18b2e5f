package io.postcopy.workload;

/** Which page a vCPU thread touches next. Pages are {@link Workload#PAGE_SIZE} bytes. */
public enum AccessPattern {
    /**
     * Each thread walks the block page by page, wrapping at the end; thread {@code t} of {@code n} starts at
     * page {@code t * pages / n}.
     */
    SEQUENTIAL,
    /** Each access picks a page uniformly at random. */
    UNIFORM,
    /**
     * The first {@link WorkloadOptions#hotPageFraction()} of the pages (a contiguous run from page 0) receive
     * {@link WorkloadOptions#hotAccessFraction()} of the accesses, uniformly; the rest go uniformly to the other
     * pages.
     */
    HOTSET
}
