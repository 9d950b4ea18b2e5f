package io.postcopy.uffd;

import static io.postcopy.uffd.internal.Native.LIBC;
import static io.postcopy.uffd.internal.Native.MEM;

import io.postcopy.uffd.internal.Native;

/**
 * The {@code PAGEMAP_SCAN} ioctl on {@code /proc/self/pagemap} (Linux 6.7+): finds page regions by
 * category and, with {@link #WP_MATCHING}, write-protects the matching pages in the same walk.
 * Results land in a reusable native array of {@code struct page_region} read through accessors.
 * Not thread-safe.
 */
public final class PageMap implements AutoCloseable {
    static final long PAGEMAP_SCAN = 0xC0606610L;
    static final int ARG_SIZE = 96, REGION_SIZE = 24;
    /** Scan flags. */
    public static final long WP_MATCHING = 1, CHECK_WPASYNC = 2;
    /** Page categories. */
    public static final long PAGE_IS_WPALLOWED = 1, PAGE_IS_WRITTEN = 2, PAGE_IS_FILE = 4, PAGE_IS_PRESENT = 8,
            PAGE_IS_SWAPPED = 16, PAGE_IS_PFNZERO = 32, PAGE_IS_HUGE = 64, PAGE_IS_SOFT_DIRTY = 128;

    private final int fd;
    private final long arg;
    private final long regions;
    private final int capacity;
    private int count;

    public PageMap(int regionCapacity) {
        capacity = regionCapacity;
        fd = LIBC.open("/proc/self/pagemap", 0 /* O_RDONLY */ | Userfaultfd.O_CLOEXEC);
        if (fd < 0) throw new UffdException("open", "/proc/self/pagemap", Native.errno());
        arg = MEM.allocateMemory(ARG_SIZE, true);
        regions = MEM.allocateMemory((long) REGION_SIZE * regionCapacity, true);
    }

    /**
     * One PAGEMAP_SCAN over {@code [start, end)}. Returns the number of regions filled; the walk may
     * stop early when the region array is full (see {@link #walkEnd()}).
     */
    public int scan(long start, long end, long flags, long categoryMask, long categoryInverted,
                    long categoryAnyOf, long returnMask) {
        MEM.putLong(arg, ARG_SIZE);
        MEM.putLong(arg + 8, flags);
        MEM.putLong(arg + 16, start);
        MEM.putLong(arg + 24, end);
        MEM.putLong(arg + 32, 0);            // walk_end (out)
        MEM.putLong(arg + 40, regions);      // vec
        MEM.putLong(arg + 48, capacity);     // vec_len
        MEM.putLong(arg + 56, 0);            // max_pages: no limit
        MEM.putLong(arg + 64, categoryInverted);
        MEM.putLong(arg + 72, categoryMask);
        MEM.putLong(arg + 80, categoryAnyOf);
        MEM.putLong(arg + 88, returnMask);
        int n = LIBC.ioctl(fd, PAGEMAP_SCAN, arg);
        if (n < 0) throw new UffdException("ioctl", String.format("PAGEMAP_SCAN, [0x%x, 0x%x), flags=%d", start, end, flags), Native.errno());
        count = n;
        return n;
    }

    /** Where the last walk stopped: {@code end} when it covered the whole range. */
    public long walkEnd() { return MEM.getLong(arg + 32); }

    public int count() { return count; }

    public long regionStart(int i) { return MEM.getLong(region(i)); }

    public long regionEnd(int i) { return MEM.getLong(region(i) + 8); }

    public long regionCategories(int i) { return MEM.getLong(region(i) + 16); }

    private long region(int i) {
        if (i < 0 || i >= count) throw new IndexOutOfBoundsException("region " + i + " of " + count);
        return regions + (long) i * REGION_SIZE;
    }

    @Override
    public void close() {
        LIBC.close(fd);
        MEM.freeMemory(arg);
        MEM.freeMemory(regions);
    }
}
