package io.postcopy.uffd;

import static io.postcopy.uffd.internal.Native.LIBC;
import static io.postcopy.uffd.internal.Native.MEM;

import io.postcopy.uffd.internal.Native;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/** Memory-management calls and raw access to native memory (x86_64 Linux constants). */
public final class NativeMemory {
    public static final int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2;
    public static final int MAP_SHARED = 0x1, MAP_PRIVATE = 0x2, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000,
            MAP_POPULATE = 0x8000, MAP_HUGETLB = 0x40000;
    public static final int MADV_DONTNEED = 4, MADV_REMOVE = 9, MADV_HUGEPAGE = 14, MADV_NOHUGEPAGE = 15,
            MADV_POPULATE_WRITE = 23;
    public static final int MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2, MFD_HUGETLB = 4;
    public static final int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;
    public static final int MCL_CURRENT = 1, MCL_FUTURE = 2, MCL_ONFAULT = 4;
    private static final long MAP_FAILED = -1;
    private static final long PAGE_SIZE = LIBC.sysconf(30 /* _SC_PAGESIZE */);

    private NativeMemory() {}

    public static long pageSize() { return PAGE_SIZE; }

    /** The default huge page size from /proc/meminfo, 0 when the kernel has none. */
    public static long hugePageSize() {
        return meminfo("Hugepagesize:") * 1024;
    }

    /** Huge pages free in the default pool (/proc/meminfo HugePages_Free). */
    public static long hugePagesFree() {
        return meminfo("HugePages_Free:");
    }

    private static long meminfo(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith(key)) return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]);
            }
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return 0;
    }

    public static long mmap(long length, int prot, int flags, int fd, long offset) {
        long a = LIBC.syscall(9 /* __NR_mmap */, 0, length, prot, flags, fd, offset);
        if (a == MAP_FAILED) throw new UffdException("mmap",
                String.format("len=%d, prot=0x%x, flags=0x%x, fd=%d, off=%d", length, prot, flags, fd, offset), Native.errno());
        return a;
    }

    public static void munmap(long addr, long length) {
        if (LIBC.munmap(addr, length) < 0) throw new UffdException("munmap", String.format("0x%x, %d", addr, length), Native.errno());
    }

    public static void madvise(long addr, long length, int advice) {
        if (LIBC.madvise(addr, length, advice) < 0) throw new UffdException("madvise",
                String.format("0x%x, %d, %s", addr, length, adviceName(advice)), Native.errno());
    }

    /** Ranges one {@link #madvise(long[], long[], int, int)} system call takes at most (the kernel's UIO_MAXIOV). */
    public static final int MADVISE_BATCH = 1024;
    private static final int NR_PIDFD_OPEN = 434, NR_PROCESS_MADVISE = 440;
    private static final int ENOSYS = 38, EINVAL = 22, EPERM = 1;
    /** A pidfd of this process for process_madvise, opened at the first batch; -1 while none (or refused). */
    private static volatile int selfPidfd = -2;

    /**
     * {@code madvise(addrs[i], lengths[i], advice)} for {@code i < n}, up to {@link #MADVISE_BATCH} ranges per system
     * call: process_madvise(2) on this process's own pidfd takes any advice since Linux 6.13 and, since 6.16, flushes
     * the TLB once per call instead of once per range (measured here: 21,000 MADV_DONTNEED ranges in 42-122 ms
     * against 1.3-1.7 s with one madvise each). Where the kernel refuses the call itself (ENOSYS, or EINVAL/EPERM from
     * a kernel that takes only a few advices this way) it falls back to one madvise per range, for good. Ranges are
     * the caller's to check: a failing one throws, and the ranges before it may have been advised.
     */
    public static void madvise(long[] addrs, long[] lengths, int n, int advice) {
        if (n < 0 || n > addrs.length || n > lengths.length) throw new IllegalArgumentException("madvise of " + n + " ranges");
        int pidfd = selfPidfd();
        if (pidfd < 0) {
            for (int i = 0; i < n; i++) madvise(addrs[i], lengths[i], advice);
            return;
        }
        long iov = allocate(16L * Math.min(n, MADVISE_BATCH));
        try {
            for (int from = 0; from < n; ) {
                int k = Math.min(n - from, MADVISE_BATCH);
                long total = 0;
                for (int i = 0; i < k; i++) {
                    putLong(iov + 16L * i, addrs[from + i]);
                    putLong(iov + 16L * i + 8, lengths[from + i]);
                    total += lengths[from + i];
                }
                long r = LIBC.syscall(NR_PROCESS_MADVISE, pidfd, iov, k, advice, 0, 0);
                if (r < 0) {
                    int e = Native.errno();
                    if (e != ENOSYS && e != EINVAL && e != EPERM) throw new UffdException("process_madvise",
                            String.format("%d ranges from 0x%x, %s", k, addrs[from], adviceName(advice)), e);
                    for (int i = from; i < from + k; i++) madvise(addrs[i], lengths[i], advice);   // throws for a bad range
                    selfPidfd = -1;    // the ranges were good: the kernel refuses the batch itself
                    for (int i = from + k; i < n; i++) madvise(addrs[i], lengths[i], advice);
                    return;
                }
                // a short count: the ranges before the one that failed are done; the next call reports it
                int done = 0;
                for (long left = r; done < k && left >= lengths[from + done]; done++) left -= lengths[from + done];
                if (r < total && done == 0) throw new UffdException("process_madvise",
                        String.format("advised %d of %d bytes from 0x%x, %s", r, total, addrs[from], adviceName(advice)), 0);
                from += r >= total ? k : done;
            }
        } finally {
            free(iov);
        }
    }

    /** Whether batches go to process_madvise (false before the first batch, and where the kernel refused it). */
    static boolean madviseBatches() {
        return selfPidfd >= 0;
    }

    private static int selfPidfd() {
        int fd = selfPidfd;
        if (fd != -2) return fd;
        synchronized (NativeMemory.class) {
            if (selfPidfd == -2) {
                long r = LIBC.syscall(NR_PIDFD_OPEN, ProcessHandle.current().pid(), 0, 0, 0, 0, 0);
                selfPidfd = r < 0 ? -1 : (int) r;
            }
            return selfPidfd;
        }
    }

    static String adviceName(int advice) {
        switch (advice) {
            case MADV_DONTNEED: return "MADV_DONTNEED";
            case MADV_REMOVE: return "MADV_REMOVE";
            case MADV_HUGEPAGE: return "MADV_HUGEPAGE";
            case MADV_NOHUGEPAGE: return "MADV_NOHUGEPAGE";
            case MADV_POPULATE_WRITE: return "MADV_POPULATE_WRITE";
            default: return String.valueOf(advice);
        }
    }

    public static int memfdCreate(String name, int flags) {
        int fd = LIBC.memfd_create(name, flags);
        if (fd < 0) throw new UffdException("memfd_create", name + ", flags=0x" + Integer.toHexString(flags), Native.errno());
        return fd;
    }

    public static void ftruncate(int fd, long length) {
        if (LIBC.ftruncate(fd, length) < 0) throw new UffdException("ftruncate", fd + ", " + length, Native.errno());
    }

    public static void fallocate(int fd, int mode, long offset, long length) {
        if (LIBC.fallocate(fd, mode, offset, length) < 0)
            throw new UffdException("fallocate", fd + ", mode=0x" + Integer.toHexString(mode) + ", " + offset + ", " + length, Native.errno());
    }

    /** Frees the pages of a shared file range (memfd, hugetlbfs): the file-backed counterpart of MADV_DONTNEED. */
    public static void punchHole(int fd, long offset, long length) {
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
    }

    public static void close(int fd) {
        if (LIBC.close(fd) < 0) throw new UffdException("close", String.valueOf(fd), Native.errno());
    }

    public static void mlockall(int flags) {
        if (LIBC.mlockall(flags) < 0) throw new UffdException("mlockall", "0x" + Integer.toHexString(flags), Native.errno());
    }

    public static void munlockall() {
        if (LIBC.munlockall() < 0) throw new UffdException("munlockall", "", Native.errno());
    }

    /** CPU time the calling thread has used, in nanoseconds ({@code CLOCK_THREAD_CPUTIME_ID}). */
    public static long threadCpuNanos() {
        long a = Native.scratch();
        if (LIBC.clock_gettime(3 /* CLOCK_THREAD_CPUTIME_ID */, a) != 0) throw new UffdException("clock_gettime", "CLOCK_THREAD_CPUTIME_ID", Native.errno());
        return MEM.getLong(a) * 1_000_000_000L + MEM.getLong(a + 8);
    }

    /** The calling thread's kernel id (what uffd reports with THREAD_ID). */
    public static int gettid() { return LIBC.gettid(); }

    /**
     * Sets the calling thread's nice value ({@code setpriority(PRIO_PROCESS, gettid(), nice)}: on Linux it
     * applies to that one thread). A value below the current one needs CAP_SYS_NICE (or RLIMIT_NICE).
     *
     * @return false if the kernel refused (EPERM, EACCES): the thread keeps its priority
     */
    public static boolean setThreadNice(int nice) {
        if (LIBC.setpriority(0, LIBC.gettid(), nice) == 0) return true;
        int errno = Native.errno();
        if (errno == Errno.EPERM || errno == Errno.EACCES) return false;
        throw new UffdException("setpriority", "PRIO_PROCESS, tid, " + nice, errno);
    }

    /**
     * Makes the calling thread SCHED_FIFO at {@code priority} (1..99): it then runs as soon as it wakes, ahead of
     * every ordinary thread (the kernel's RT throttling still leaves them 5 % of each CPU). For threads that sleep
     * most of the time and do a short piece of work per wake-up. Needs CAP_SYS_NICE (or RLIMIT_RTPRIO).
     *
     * @return false if the kernel refused (EPERM): the thread keeps its policy
     */
    public static boolean setThreadRealtime(int priority) {
        if (priority < 1 || priority > 99) throw new IllegalArgumentException("SCHED_FIFO priority " + priority + " not in 1..99");
        long a = Native.scratch();
        MEM.putInt(a, priority);               // struct sched_param { int sched_priority; }
        if (LIBC.sched_setscheduler(0, 1 /* SCHED_FIFO */, a) == 0) return true;
        int errno = Native.errno();
        if (errno == Errno.EPERM || errno == Errno.EACCES) return false;
        throw new UffdException("sched_setscheduler", "SCHED_FIFO, " + priority, errno);
    }

    private static final long NR_SCHED_SETATTR = 314;   // x86_64

    /**
     * Puts the calling thread back in the fair class, SCHED_OTHER at {@code nice}, from any policy, in one
     * {@code sched_setattr} call (a thread leaving SCHED_FIFO would otherwise pass through nice 0). A nice value
     * below the current one needs CAP_SYS_NICE.
     *
     * @return false if the kernel refused (EPERM, EACCES): the thread keeps its scheduling
     */
    public static boolean setThreadFair(int nice) {
        if (nice < -20 || nice > 19) throw new IllegalArgumentException("nice " + nice + " not in -20..19");
        long a = Native.scratch();
        MEM.setMemory(a, 48, (byte) 0);       // struct sched_attr, SCHED_ATTR_SIZE_VER0
        MEM.putInt(a, 48);                    // size
        MEM.putInt(a + 4, 0);                 // sched_policy SCHED_OTHER
        MEM.putInt(a + 16, nice);             // sched_nice
        if (LIBC.syscall(NR_SCHED_SETATTR, 0, a, 0, 0, 0, 0) == 0) return true;
        int errno = Native.errno();
        if (errno == Errno.EPERM || errno == Errno.EACCES) return false;
        throw new UffdException("sched_setattr", "SCHED_OTHER, nice " + nice, errno);
    }

    /** The calling thread's scheduling policy (0 SCHED_OTHER, 1 SCHED_FIFO, ...). */
    public static int threadPolicy() {
        return LIBC.sched_getscheduler(0);
    }

    /** The calling thread's nice value. */
    public static int threadNice() {
        return LIBC.getpriority(0, LIBC.gettid());
    }

    // --- raw memory: jffi's MemoryIO, backed by Unsafe ---

    public static long allocate(long size) { return MEM.allocateMemory(size, true); }

    public static void free(long addr) { MEM.freeMemory(addr); }

    public static void copy(long src, long dst, long length) { MEM.copyMemory(src, dst, length); }

    public static void fill(long addr, long length, byte value) { MEM.setMemory(addr, length, value); }

    public static void put(byte[] src, int offset, int length, long dst) { MEM.putByteArray(dst, src, offset, length); }

    public static void get(long src, byte[] dst, int offset, int length) { MEM.getByteArray(src, dst, offset, length); }

    public static byte getByte(long addr) { return MEM.getByte(addr); }

    public static void putByte(long addr, byte v) { MEM.putByte(addr, v); }

    public static long getLong(long addr) { return MEM.getLong(addr); }

    public static void putLong(long addr, long v) { MEM.putLong(addr, v); }

    /**
     * Copies through libc's {@code memcpy}, called as a native function. Use this, not {@link #copy},
     * to touch memory that may be registered with userfaultfd: a thread blocked on a fault while
     * running Java code holds up every JVM safepoint (and so the fault thread that must resolve it),
     * whereas a thread blocked inside a native call does not.
     */
    public static void nativeCopy(long src, long dst, long length) { LIBC.memcpy(dst, src, length); }

    /** {@code memcmp} as a native call (see {@link #nativeCopy}): 0 when equal. */
    public static int nativeCompare(long a, long b, long length) { return LIBC.memcmp(a, b, length); }

    /** A direct ByteBuffer over native memory (no copy; the caller keeps the memory alive). */
    public static ByteBuffer wrap(long addr, int length) { return MEM.newDirectByteBuffer(addr, length); }

    /** The native address of a direct buffer's first byte. */
    public static long address(ByteBuffer direct) {
        if (!direct.isDirect()) throw new IllegalArgumentException("not a direct buffer");
        return MEM.getDirectBufferAddress(direct);
    }

    /** True when every byte of the range is zero (8 bytes at a time). */
    public static boolean isZero(long addr, long length) {
        long end = addr + (length & ~7L), p = addr;
        for (; p < end; p += 8) if (MEM.getLong(p) != 0) return false;
        for (end = addr + length; p < end; p++) if (MEM.getByte(p) != 0) return false;
        return true;
    }
}
