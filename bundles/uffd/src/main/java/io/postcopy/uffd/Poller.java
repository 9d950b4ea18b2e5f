package io.postcopy.uffd;

import static io.postcopy.uffd.internal.Native.LIBC;
import static io.postcopy.uffd.internal.Native.MEM;

import io.postcopy.uffd.internal.Native;

/** {@code poll(2)} over a fixed set of descriptors for readability, with a reusable native pollfd array. */
public final class Poller implements AutoCloseable {
    public static final short POLLIN = 0x1, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
    private final long fds;
    private final int n;

    public Poller(int... descriptors) {
        n = descriptors.length;
        fds = MEM.allocateMemory(8L * n, true);
        for (int i = 0; i < n; i++) {
            MEM.putInt(fds + 8L * i, descriptors[i]);
            MEM.putShort(fds + 8L * i + 4, POLLIN);
        }
    }

    /** Waits up to {@code timeoutMillis} (-1: forever). Returns the number of ready descriptors; 0 on timeout or EINTR. */
    public int poll(int timeoutMillis) {
        for (int i = 0; i < n; i++) MEM.putShort(fds + 8L * i + 6, (short) 0);
        int r = LIBC.poll(fds, n, timeoutMillis);
        if (r < 0) {
            int errno = Native.errno();
            if (errno == Errno.EINTR) return 0;
            throw new UffdException("poll", n + " fds, timeout=" + timeoutMillis, errno);
        }
        return r;
    }

    public short revents(int index) { return MEM.getShort(fds + 8L * index + 6); }

    public boolean readable(int index) { return (revents(index) & POLLIN) != 0; }

    /** Error, hang-up or invalid descriptor. */
    public boolean failed(int index) { return (revents(index) & (POLLERR | POLLHUP | POLLNVAL)) != 0; }

    @Override
    public void close() { MEM.freeMemory(fds); }
}
