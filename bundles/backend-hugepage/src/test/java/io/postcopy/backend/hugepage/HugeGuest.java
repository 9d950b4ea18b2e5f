package io.postcopy.backend.hugepage;

import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.SourceImage;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/**
 * Test fixtures for hugetlb blocks: a huge-page reservation that restores the old pool size, the source image
 * with zero target pages and whole zero huge pages, and a "stream" that sends each huge page's target pages
 * contiguously and in order in several shapes. (The requester, readers and image content come from the fault
 * bundle's test-jar and the test kit.)
 */
final class HugeGuest {
    static final long PAGE = SourceImage.PAGE;
    static final Path NR_HUGEPAGES = Path.of("/proc/sys/vm/nr_hugepages");

    private HugeGuest() {}

    /** Raises the default huge page pool by {@code pages}; {@link #close} puts the old size back. */
    static final class Reservation implements AutoCloseable {
        final long old;

        private Reservation(long old) {
            this.old = old;
        }

        static Reservation reserve(long pages) {
            long huge = NativeMemory.hugePageSize();
            if (huge == 0) abort("the kernel has no huge pages (no Hugepagesize in /proc/meminfo)");
            long old;
            try {
                old = Long.parseLong(Files.readString(NR_HUGEPAGES).trim());
            } catch (IOException | NumberFormatException e) {
                abort("cannot read " + NR_HUGEPAGES + ": " + e);
                return null;
            }
            Reservation r = new Reservation(old);
            try {
                Files.writeString(NR_HUGEPAGES, Long.toString(old + pages));
            } catch (IOException e) {
                abort("cannot write " + NR_HUGEPAGES + " (not root?): " + e);
            }
            long free = NativeMemory.hugePagesFree();
            if (free < pages) {
                r.close();
                abort("asked for " + pages + " more huge pages of " + (huge >> 10) + " KiB, only " + free + " free");
            }
            return r;
        }

        private static void abort(String why) {
            System.err.println("\n*****************************************************************************");
            System.err.println("*** HUGETLB TESTS SKIPPED: this machine cannot reserve huge pages: " + why);
            System.err.println("*** the hugepage placement backend is NOT tested here");
            System.err.println("*****************************************************************************\n");
            Assumptions.abort("cannot reserve huge pages: " + why);
        }

        @Override
        public void close() {
            try {
                Files.writeString(NR_HUGEPAGES, Long.toString(old));
            } catch (IOException e) {
                System.err.println("*** could not restore " + NR_HUGEPAGES + " to " + old + ": " + e);
            }
        }
    }

    /**
     * The source side of one migration stream: each call sends whole huge pages under the stream lock (one
     * TCP stream carries one huge page's target pages back to back; a requested page jumps the queue only
     * between huge pages, as in QEMU).
     */
    static final class Stream {
        final IncomingPostcopy in;
        final RamBlock block;
        final long image, huge;   // huge: the unit sent in one piece (the block's huge page, or 64 KiB)

        Stream(IncomingPostcopy in, RamBlock block, long image, long unit) {
            this.in = in;
            this.block = block;
            this.image = image;
            this.huge = unit;
        }

        long units() {
            return block.usedLength() / huge;
        }

        /** Sends unit (huge page) {@code h} in the shape {@code shape % 4} names. */
        synchronized void sendHugePage(long h, int shape) {
            long base = h * huge;
            boolean allZero = (base / huge) % 5 == 4;
            switch (shape % 4) {
                case 0: // one target page per call, zero pages as zero pages
                    for (long o = base; o < base + huge; o += PAGE) one(o);
                    break;
                case 1: // data runs between zero pages
                    runs(base, huge);
                    break;
                case 2: // the whole huge page in one call
                    if (allZero) in.placeZeroPages(block, base, huge);
                    else in.placePages(block, base, image + base, huge);
                    break;
                default: // 64 KiB runs of raw bytes (zero pages sent as data)
                    for (long o = base; o < base + huge; o += 16 * PAGE) in.placePages(block, o, image + o, 16 * PAGE);
            }
        }

        /** Sends huge pages {@code h} and {@code h+1} as three runs, the middle one spanning both. */
        synchronized void sendPairSpanning(long h) {
            long base = h * huge, a = huge * 3 / 4, b = huge * 3 / 2;   // [0, 3/4) [3/4, 3/2) [3/2, 2) huge pages
            in.placePages(block, base, image + base, a);
            in.placePages(block, base + a, image + base + a, b - a);
            in.placePages(block, base + b, image + base + b, 2 * huge - b);
        }

        private void one(long o) {
            if (SourceImage.isZeroPage(o, huge)) in.placeZeroPages(block, o, PAGE);
            else in.placePages(block, o, image + o, PAGE);
        }

        private void runs(long offset, long length) {
            SourceImage.forEachRun(offset, length, huge, (o, l, zero) -> {
                if (zero) in.placeZeroPages(block, o, l);
                else in.placePages(block, o, image + o, l);
            });
        }
    }
}
