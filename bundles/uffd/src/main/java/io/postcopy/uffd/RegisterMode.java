package io.postcopy.uffd;

import java.util.Set;

/** {@code UFFDIO_REGISTER_MODE_*}: which faults a registered range reports. */
public enum RegisterMode {
    /** Faults on pages not present (postcopy's destination). */
    MISSING(1),
    /** Writes to write-protected pages (dirty tracking on the source). */
    WP(2),
    /** Faults on pages present in the page cache but not mapped (shmem/hugetlbfs; resolved by CONTINUE). */
    MINOR(4);

    private final long bit;

    RegisterMode(long bit) { this.bit = bit; }

    public long bit() { return bit; }

    public static long toMask(Set<RegisterMode> modes) {
        long m = 0;
        for (RegisterMode r : modes) m |= r.bit;
        return m;
    }
}
