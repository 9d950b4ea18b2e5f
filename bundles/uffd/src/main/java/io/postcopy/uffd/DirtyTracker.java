package io.postcopy.uffd;

import java.util.EnumSet;

/**
 * Dirty-page tracking for the source side: the range is registered write-protect on a userfaultfd in
 * asynchronous mode ({@code WP_ASYNC}: writes never block, the kernel just marks the page written), and
 * {@code PAGEMAP_SCAN} reports the written pages and re-protects them in the same walk.
 * Unpopulated pages are protected too ({@code WP_UNPOPULATED}), so a first write to a never-touched
 * page is seen. Soft-dirty bits would be the older way; these kernels lack them.
 */
public final class DirtyTracker implements AutoCloseable {
    /** Receives dirty runs as half-open address ranges, in ascending order. */
    @FunctionalInterface
    public interface RunSink {
        void run(long start, long end);
    }

    private final Userfaultfd uffd;
    private final PageMap pageMap;
    private final long start, length;

    /** Starts tracking {@code [start, start+length)}: every page is clean after this returns. */
    public DirtyTracker(long start, long length) {
        this.start = start;
        this.length = length;
        uffd = Userfaultfd.open(Userfaultfd.O_CLOEXEC | Userfaultfd.O_NONBLOCK);
        try {
            uffd.api(EnumSet.of(UffdFeature.WP_ASYNC, UffdFeature.WP_UNPOPULATED));
            uffd.register(start, length, EnumSet.of(RegisterMode.WP));
            uffd.writeprotect(start, length, Userfaultfd.WRITEPROTECT_WP);
            pageMap = new PageMap(4096);
        } catch (RuntimeException e) {
            uffd.close();
            throw e;
        }
    }

    /**
     * Reports every page written since the last scan (or since construction) and write-protects it
     * again. Returns the number of dirty bytes.
     */
    public long scan(RunSink sink) {
        long at = start, end = start + length, dirty = 0;
        while (at < end) {
            int n = pageMap.scan(at, end, PageMap.WP_MATCHING | PageMap.CHECK_WPASYNC,
                    PageMap.PAGE_IS_WRITTEN, 0, 0, PageMap.PAGE_IS_WRITTEN);
            for (int i = 0; i < n; i++) {
                long s = pageMap.regionStart(i), e = pageMap.regionEnd(i);
                dirty += e - s;
                sink.run(s, e);
            }
            long walked = pageMap.walkEnd();
            if (walked <= at) break;   // no progress: nothing more to report
            at = walked;
        }
        return dirty;
    }

    public long start() { return start; }

    public long length() { return length; }

    /** Stops tracking: the range is unregistered and its pages writable as before. */
    @Override
    public void close() {
        try {
            uffd.unregister(start, length);
        } catch (UffdException ignored) {
            // the range may already be unmapped; closing the fd drops the registration anyway
        }
        uffd.close();
        pageMap.close();
    }
}
