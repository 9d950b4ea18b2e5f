package io.postcopy.uffd;

import static io.postcopy.uffd.internal.Native.LIBC;
import static io.postcopy.uffd.internal.Native.MEM;

import io.postcopy.uffd.internal.Native;
import java.util.Set;

/**
 * One userfaultfd file descriptor and its ioctls ({@code linux/userfaultfd.h}, x86_64).
 *
 * <p>Placement calls ({@link #copy}, {@link #zeropage}, {@link #continueRange}, {@link #move}) return the
 * number of bytes the kernel handled, which may be less than asked (a partial copy: call again for the
 * rest), or one of two outcomes that are not failures: {@link #EXISTS} when the first page is already
 * present (a normal race between a requested page and the background stream) and {@link #AGAIN} when the
 * address space was changing and nothing was done. Anything else throws {@link UffdException}.
 * They allocate nothing: the ioctl argument lives in per-thread native scratch memory.
 *
 * <p>Thread safety: all ioctls may be issued concurrently from several threads, as the kernel allows.
 */
public final class Userfaultfd implements AutoCloseable {
    /** Open flags. */
    public static final int O_CLOEXEC = 0x80000, O_NONBLOCK = 0x800, USER_MODE_ONLY = 1;
    /** Mode bits of the placement ioctls. */
    public static final int COPY_DONTWAKE = 1, COPY_WP = 2, ZEROPAGE_DONTWAKE = 1,
            CONTINUE_DONTWAKE = 1, CONTINUE_WP = 2, MOVE_DONTWAKE = 1, MOVE_ALLOW_SRC_HOLES = 2,
            WRITEPROTECT_WP = 1, WRITEPROTECT_DONTWAKE = 2;
    /** Outcome: the destination's first page is already present; nothing was placed. */
    public static final long EXISTS = -Errno.EEXIST;
    /** Outcome: the mm was changing (e.g. a concurrent fork or remap); nothing was placed, try again. */
    public static final long AGAIN = -Errno.EAGAIN;

    static final long UFFD_API = 0xAA;
    static final int NR_USERFAULTFD = 323;
    static final long USERFAULTFD_IOC_NEW = 0xAA00L;
    static final long UFFDIO_API = 0xC018AA3FL, UFFDIO_REGISTER = 0xC020AA00L, UFFDIO_UNREGISTER = 0x8010AA01L,
            UFFDIO_WAKE = 0x8010AA02L, UFFDIO_COPY = 0xC028AA03L, UFFDIO_ZEROPAGE = 0xC020AA04L,
            UFFDIO_MOVE = 0xC028AA05L, UFFDIO_WRITEPROTECT = 0xC018AA06L, UFFDIO_CONTINUE = 0xC020AA07L;

    /** How the descriptor was obtained. */
    public enum Source { SYSCALL, DEVICE }

    private final int fd;
    private final Source source;
    private volatile boolean closed;
    private long enabledFeatures;

    private Userfaultfd(int fd, Source source) {
        this.fd = fd;
        this.source = source;
    }

    /** Opens by the {@code userfaultfd} syscall, falling back to {@code /dev/userfaultfd}. */
    public static Userfaultfd open(int flags) {
        try {
            return openSyscall(flags);
        } catch (UffdException syscallFailure) {
            try {
                return openDevice(flags);
            } catch (UffdException deviceFailure) {
                syscallFailure.addSuppressed(deviceFailure);
                throw syscallFailure;
            }
        }
    }

    /** {@code open(O_CLOEXEC | O_NONBLOCK)}: what a fault thread polling the fd wants. */
    public static Userfaultfd open() {
        return open(O_CLOEXEC | O_NONBLOCK);
    }

    public static Userfaultfd openSyscall(int flags) {
        long fd = LIBC.syscall(NR_USERFAULTFD, flags);
        if (fd < 0) throw new UffdException("userfaultfd", flagsText(flags), Native.errno());
        return new Userfaultfd((int) fd, Source.SYSCALL);
    }

    public static Userfaultfd openDevice(int flags) {
        int dev = LIBC.open("/dev/userfaultfd", 0x2 /* O_RDWR */ | O_CLOEXEC);
        if (dev < 0) throw new UffdException("open", "/dev/userfaultfd", Native.errno());
        try {
            int fd = LIBC.ioctl(dev, USERFAULTFD_IOC_NEW, flags);
            if (fd < 0) throw new UffdException("ioctl", "/dev/userfaultfd, USERFAULTFD_IOC_NEW, " + flagsText(flags), Native.errno());
            return new Userfaultfd(fd, Source.DEVICE);
        } finally {
            LIBC.close(dev);
        }
    }

    private static String flagsText(int flags) {
        StringBuilder b = new StringBuilder();
        if ((flags & O_CLOEXEC) != 0) b.append("O_CLOEXEC|");
        if ((flags & O_NONBLOCK) != 0) b.append("O_NONBLOCK|");
        if ((flags & USER_MODE_ONLY) != 0) b.append("UFFD_USER_MODE_ONLY|");
        return b.length() == 0 ? "0" : b.substring(0, b.length() - 1);
    }

    public int fd() { return fd; }

    public Source source() { return source; }

    /** The result of the API handshake. {@code available} is everything this kernel offers. */
    public record Api(Set<UffdFeature> available, Set<UffdFeature> enabled, Set<UffdIoctl> ioctls) {}

    /**
     * The {@code UFFDIO_API} handshake, once per descriptor, enabling {@code requested}.
     * Fails with EINVAL when a requested feature is not offered by this kernel.
     */
    public Api api(Set<UffdFeature> requested) {
        long a = Native.scratch();
        long want = UffdFeature.toMask(requested);
        MEM.putLong(a, UFFD_API);
        MEM.putLong(a + 8, want);
        MEM.putLong(a + 16, 0);
        check(LIBC.ioctl(fd, UFFDIO_API, a), "UFFDIO_API", "features=" + requested);
        enabledFeatures = want;
        return new Api(UffdFeature.fromMask(MEM.getLong(a + 8)), UffdFeature.fromMask(want),
                UffdIoctl.fromMask(MEM.getLong(a + 16)));
    }

    public boolean enabled(UffdFeature feature) {
        return (enabledFeatures & feature.bit()) != 0;
    }

    /** Registers {@code [start, start+len)}; returns the ioctls the range supports. */
    public Set<UffdIoctl> register(long start, long len, Set<RegisterMode> modes) {
        return UffdIoctl.fromMask(registerMask(start, len, RegisterMode.toMask(modes)));
    }

    /** As {@link #register(long, long, Set)}, with the mode and the ioctl set as raw masks. */
    public long registerMask(long start, long len, long modeMask) {
        long a = Native.scratch();
        MEM.putLong(a, start);
        MEM.putLong(a + 8, len);
        MEM.putLong(a + 16, modeMask);
        MEM.putLong(a + 24, 0);
        if (LIBC.ioctl(fd, UFFDIO_REGISTER, a) < 0) throw fail("UFFDIO_REGISTER", start, len, "mode=" + modeMask);
        return MEM.getLong(a + 24);
    }

    public void unregister(long start, long len) {
        range(UFFDIO_UNREGISTER, "UFFDIO_UNREGISTER", start, len);
    }

    /** Wakes threads blocked on faults in the range (after placements with DONTWAKE). */
    public void wake(long start, long len) {
        range(UFFDIO_WAKE, "UFFDIO_WAKE", start, len);
    }

    /** Atomically places {@code len} bytes from {@code src} at the missing pages of {@code dst}. See class doc for the result. */
    public long copy(long dst, long src, long len, int mode) {
        return transfer(UFFDIO_COPY, "UFFDIO_COPY", dst, src, len, mode);
    }

    /** Moves pages from {@code src} to the missing pages at {@code dst} without copying. See class doc for the result. */
    public long move(long dst, long src, long len, int mode) {
        return transfer(UFFDIO_MOVE, "UFFDIO_MOVE", dst, src, len, mode);
    }

    /** Maps the zero page at the missing pages of the range. See class doc for the result. */
    public long zeropage(long start, long len, int mode) {
        return fill(UFFDIO_ZEROPAGE, "UFFDIO_ZEROPAGE", start, len, mode);
    }

    /** Resolves MINOR faults: maps the page-cache pages of the range. See class doc for the result. */
    public long continueRange(long start, long len, int mode) {
        return fill(UFFDIO_CONTINUE, "UFFDIO_CONTINUE", start, len, mode);
    }

    /** uffdio_copy and uffdio_move: dst, src, len, mode, then the signed result at offset 32. */
    private long transfer(long request, String op, long dst, long src, long len, int mode) {
        long a = Native.scratch();
        MEM.putLong(a, dst);
        MEM.putLong(a + 8, src);
        MEM.putLong(a + 16, len);
        MEM.putLong(a + 24, mode);
        MEM.putLong(a + 32, 0);
        return outcome(LIBC.ioctl(fd, request, a), a + 32, len, op, dst, len, src);
    }

    /** uffdio_zeropage and uffdio_continue: a range, mode, then the signed result at offset 24. */
    private long fill(long request, String op, long start, long len, int mode) {
        long a = Native.scratch();
        MEM.putLong(a, start);
        MEM.putLong(a + 8, len);
        MEM.putLong(a + 16, mode);
        MEM.putLong(a + 24, 0);
        return outcome(LIBC.ioctl(fd, request, a), a + 24, len, op, start, len, 0);
    }

    /** Sets ({@link #WRITEPROTECT_WP}) or clears write protection on the range. */
    public void writeprotect(long start, long len, int mode) {
        long a = Native.scratch();
        MEM.putLong(a, start);
        MEM.putLong(a + 8, len);
        MEM.putLong(a + 16, mode);
        if (LIBC.ioctl(fd, UFFDIO_WRITEPROTECT, a) < 0) throw fail("UFFDIO_WRITEPROTECT", start, len, "mode=" + mode);
    }

    /**
     * Places a run of pages completely: repeats partial copies and skips pages that already exist.
     * Returns the bytes this call placed (the run's length less the pages found present).
     */
    public long copyRun(long dst, long src, long len, long pageSize, int mode) {
        return run(true, dst, src, len, pageSize, mode);
    }

    /** As {@link #copyRun} for zero pages. */
    public long zeropageRun(long start, long len, long pageSize, int mode) {
        return run(false, start, 0, len, pageSize, mode);
    }

    private long run(boolean copy, long dst, long src, long len, long pageSize, int mode) {
        long placed = 0, done = 0;
        while (done < len) {
            long r = copy ? copy(dst + done, src + done, len - done, mode) : zeropage(dst + done, len - done, mode);
            if (r == EXISTS) {
                done += pageSize;
            } else if (r != AGAIN) {
                done += r;
                placed += r;
            }
        }
        return placed;
    }

    private long outcome(int rc, long resultField, long len, String op, long start, long rlen, long src) {
        if (rc == 0) return len;
        int errno = Native.errno();
        long handled = MEM.getLong(resultField);
        if (errno == Errno.EAGAIN) return handled > 0 ? handled : AGAIN;
        if (errno == Errno.EEXIST && handled == EXISTS) return EXISTS;
        throw new UffdException(op, String.format("fd=%d, start=0x%x, len=%d%s", fd, start, rlen,
                src != 0 ? String.format(", src=0x%x", src) : ""), errno);
    }

    private void range(long request, String op, long start, long len) {
        long a = Native.scratch();
        MEM.putLong(a, start);
        MEM.putLong(a + 8, len);
        if (LIBC.ioctl(fd, request, a) < 0) throw fail(op, start, len, null);
    }

    private UffdException fail(String op, long start, long len, String extra) {
        int errno = Native.errno();
        return new UffdException(op, String.format("fd=%d, start=0x%x, len=%d%s", fd, start, len,
                extra == null ? "" : ", " + extra), errno);
    }

    private void check(int rc, String op, String args) {
        if (rc < 0) throw new UffdException(op, "fd=" + fd + ", " + args, Native.errno());
    }

    /** Closing wakes every thread still blocked on this descriptor's ranges (they retry the access). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        LIBC.close(fd);
    }

    @Override
    public String toString() {
        return "Userfaultfd[fd=" + fd + ", " + source + "]";
    }
}
