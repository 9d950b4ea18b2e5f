package io.postcopy.uffd;

import static io.postcopy.uffd.internal.Native.LIBC;
import static io.postcopy.uffd.internal.Native.MEM;

import io.postcopy.uffd.internal.Native;

/**
 * A reusable native buffer of {@code struct uffd_msg} (32 bytes each) filled by one {@code read} and
 * decoded in place: the fault thread reads a batch and walks it by index, allocating nothing.
 * Not thread-safe: one per reading thread.
 */
public final class UffdMessages implements AutoCloseable {
    public static final int MSG_SIZE = 32;
    public static final int EVENT_PAGEFAULT = 0x12, EVENT_FORK = 0x13, EVENT_REMAP = 0x14,
            EVENT_REMOVE = 0x15, EVENT_UNMAP = 0x16;
    /** {@code UFFD_PAGEFAULT_FLAG_*}. */
    public static final long FLAG_WRITE = 1, FLAG_WP = 2, FLAG_MINOR = 4;
    /** Field offsets in struct uffd_msg (checked against the kernel header by a test). */
    static final int OFF_FLAGS = 8, OFF_ADDRESS = 16, OFF_PTID = 24, OFF_ARG0 = 8, OFF_ARG1 = 16, OFF_ARG2 = 24;

    private final int capacity;
    private final long buf;
    private int count;

    public UffdMessages(int capacity) {
        if (capacity < 1) throw new IllegalArgumentException("capacity " + capacity);
        this.capacity = capacity;
        this.buf = MEM.allocateMemory((long) capacity * MSG_SIZE, true);
    }

    public int capacity() { return capacity; }

    /**
     * Reads up to {@link #capacity()} messages. Returns how many, 0 when none is pending on a
     * non-blocking descriptor (or the read was interrupted).
     */
    public int read(Userfaultfd uffd) {
        long n = LIBC.read(uffd.fd(), buf, (long) capacity * MSG_SIZE);
        if (n < 0) {
            int errno = Native.errno();
            count = 0;
            if (errno == Errno.EAGAIN || errno == Errno.EINTR) return 0;
            throw new UffdException("read", "uffd fd=" + uffd.fd() + ", " + capacity + " messages", errno);
        }
        count = (int) (n / MSG_SIZE);
        return count;
    }

    public int count() { return count; }

    private long at(int i) {
        if (i < 0 || i >= count) throw new IndexOutOfBoundsException("message " + i + " of " + count);
        return buf + (long) i * MSG_SIZE;
    }

    /** {@code UFFD_EVENT_*} of message {@code i}. */
    public int event(int i) { return MEM.getByte(at(i)) & 0xff; }

    public long faultFlags(int i) { return MEM.getLong(at(i) + OFF_FLAGS); }

    public long faultAddress(int i) { return MEM.getLong(at(i) + OFF_ADDRESS); }

    public boolean isWrite(int i) { return (faultFlags(i) & FLAG_WRITE) != 0; }

    public boolean isWriteProtect(int i) { return (faultFlags(i) & FLAG_WP) != 0; }

    public boolean isMinor(int i) { return (faultFlags(i) & FLAG_MINOR) != 0; }

    /** The faulting thread's id; meaningful only with {@link UffdFeature#THREAD_ID} enabled. */
    public int faultThreadId(int i) { return MEM.getInt(at(i) + OFF_PTID); }

    /** FORK: the new userfaultfd of the child. */
    public int forkUfd(int i) { return MEM.getInt(at(i) + OFF_ARG0); }

    public long remapFrom(int i) { return MEM.getLong(at(i) + OFF_ARG0); }

    public long remapTo(int i) { return MEM.getLong(at(i) + OFF_ARG1); }

    public long remapLength(int i) { return MEM.getLong(at(i) + OFF_ARG2); }

    /** REMOVE and UNMAP: the affected range. */
    public long removeStart(int i) { return MEM.getLong(at(i) + OFF_ARG0); }

    public long removeEnd(int i) { return MEM.getLong(at(i) + OFF_ARG1); }

    public static String eventName(int event) {
        switch (event) {
            case EVENT_PAGEFAULT: return "PAGEFAULT";
            case EVENT_FORK: return "FORK";
            case EVENT_REMAP: return "REMAP";
            case EVENT_REMOVE: return "REMOVE";
            case EVENT_UNMAP: return "UNMAP";
            default: return "event 0x" + Integer.toHexString(event);
        }
    }

    @Override
    public void close() {
        MEM.freeMemory(buf);
    }
}
