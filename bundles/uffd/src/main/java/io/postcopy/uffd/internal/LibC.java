package io.postcopy.uffd.internal;

import jnr.ffi.annotations.SaveError;

/**
 * The libc entry points the binding needs. Pointers are passed as {@code long} addresses so that
 * no {@code Pointer} object is created per call; every call that can fail saves errno.
 */
public interface LibC {
    @SaveError long syscall(long number, long arg1);
    @SaveError int ioctl(int fd, long request, long arg);
    @SaveError int open(String path, int flags);
    @SaveError int close(int fd);
    @SaveError long read(int fd, long buf, long count);
    @SaveError long write(int fd, long buf, long count);
    @SaveError int poll(long fds, long nfds, int timeoutMillis);
    @SaveError int eventfd(int initval, int flags);
    /** The raw syscall with six arguments. mmap goes through it: jffi's six-argument fast path passed a
     *  corrupt sixth argument (mmap's offset) here, while seven arguments take the generic path. */
    @SaveError long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);
    @SaveError int munmap(long addr, long length);
    @SaveError int madvise(long addr, long length, int advice);
    @SaveError int memfd_create(String name, int flags);
    @SaveError int ftruncate(int fd, long length);
    @SaveError int fallocate(int fd, int mode, long offset, long length);
    @SaveError int mlockall(int flags);
    @SaveError int munlockall();
    long memcpy(long dst, long src, long n);
    int memcmp(long a, long b, long n);
    long sysconf(int name);
    int gettid();
    @SaveError int setpriority(int which, int who, int prio);
    @SaveError int getpriority(int which, int who);
    @SaveError int sched_setscheduler(int pid, int policy, long param);
    int sched_getscheduler(int pid);
    @SaveError int clock_gettime(int clockId, long timespec);
}
