package io.postcopy.uffd;

import java.util.EnumSet;
import java.util.Set;

/** {@code UFFD_FEATURE_*} bits of {@code struct uffdio_api.features} (linux/userfaultfd.h). */
public enum UffdFeature {
    PAGEFAULT_FLAG_WP(0), EVENT_FORK(1), EVENT_REMAP(2), EVENT_REMOVE(3), MISSING_HUGETLBFS(4),
    MISSING_SHMEM(5), EVENT_UNMAP(6), SIGBUS(7), THREAD_ID(8), MINOR_HUGETLBFS(9), MINOR_SHMEM(10),
    EXACT_ADDRESS(11), WP_HUGETLBFS_SHMEM(12), WP_UNPOPULATED(13), POISON(14), WP_ASYNC(15), MOVE(16);

    private final long bit;

    UffdFeature(int shift) { this.bit = 1L << shift; }

    public long bit() { return bit; }

    public static Set<UffdFeature> fromMask(long mask) {
        EnumSet<UffdFeature> set = EnumSet.noneOf(UffdFeature.class);
        for (UffdFeature f : values()) if ((mask & f.bit) != 0) set.add(f);
        return set;
    }

    public static long toMask(Set<UffdFeature> features) {
        long m = 0;
        for (UffdFeature f : features) m |= f.bit;
        return m;
    }
}
