package io.postcopy.uffd;

import static io.postcopy.uffd.internal.Native.LIBC;
import static io.postcopy.uffd.internal.Native.MEM;

import io.postcopy.uffd.internal.Native;

/** An {@code eventfd}: the fault thread's quit signal (and any other wake-up a poller needs). */
public final class EventFd implements AutoCloseable {
    private static final int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;
    private final int fd;
    private volatile boolean closed;

    private EventFd(int fd) { this.fd = fd; }

    public static EventFd create(boolean nonBlocking) {
        int fd = LIBC.eventfd(0, EFD_CLOEXEC | (nonBlocking ? EFD_NONBLOCK : 0));
        if (fd < 0) throw new UffdException("eventfd", "0, EFD_CLOEXEC" + (nonBlocking ? "|EFD_NONBLOCK" : ""), Native.errno());
        return new EventFd(fd);
    }

    public int fd() { return fd; }

    /** Adds 1 to the counter: a poller waiting on this fd becomes readable. */
    public void signal() { signal(1); }

    public void signal(long n) {
        long a = Native.scratch();
        MEM.putLong(a, n);
        if (LIBC.write(fd, a, 8) != 8) throw new UffdException("write", "eventfd fd=" + fd + ", " + n, Native.errno());
    }

    /** Reads and resets the counter; 0 when it was 0 (non-blocking descriptor). */
    public long drain() {
        long a = Native.scratch();
        long n = LIBC.read(fd, a, 8);
        if (n == 8) return MEM.getLong(a);
        int errno = Native.errno();
        if (errno == Errno.EAGAIN) return 0;
        throw new UffdException("read", "eventfd fd=" + fd, errno);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        LIBC.close(fd);
    }
}
