package io.postcopy.uffd;

/**
 * A mapped memory range that this process owns: anonymous, shared anonymous, memfd (shmem) or hugetlb
 * (memfd with MFD_HUGETLB). Closing unmaps it and closes its file.
 */
public final class Mapping implements AutoCloseable {
    /** The backing of a mapping. */
    public enum Kind { ANONYMOUS, SHARED, MEMFD, HUGETLB }

    private final Kind kind;
    private final long address;
    private final long length;
    private final int fd;
    private final long pageSize;
    private boolean closed;

    private Mapping(Kind kind, long address, long length, int fd, long pageSize) {
        this.kind = kind;
        this.address = address;
        this.length = length;
        this.fd = fd;
        this.pageSize = pageSize;
    }

    /** Private anonymous memory, reserved lazily (MAP_NORESERVE): the usual guest-RAM backing. */
    public static Mapping anonymous(long length) {
        checkLength(length, NativeMemory.pageSize());
        long a = NativeMemory.mmap(length, NativeMemory.PROT_READ | NativeMemory.PROT_WRITE,
                NativeMemory.MAP_PRIVATE | NativeMemory.MAP_ANONYMOUS | NativeMemory.MAP_NORESERVE, -1, 0);
        return new Mapping(Kind.ANONYMOUS, a, length, -1, NativeMemory.pageSize());
    }

    /** Shared anonymous memory (shmem without a file descriptor). */
    public static Mapping shared(long length) {
        checkLength(length, NativeMemory.pageSize());
        long a = NativeMemory.mmap(length, NativeMemory.PROT_READ | NativeMemory.PROT_WRITE,
                NativeMemory.MAP_SHARED | NativeMemory.MAP_ANONYMOUS | NativeMemory.MAP_NORESERVE, -1, 0);
        return new Mapping(Kind.SHARED, a, length, -1, NativeMemory.pageSize());
    }

    /** A memfd of {@code length} bytes mapped shared. */
    public static Mapping memfd(String name, long length) {
        return file(Kind.MEMFD, name, length, NativeMemory.MFD_CLOEXEC, NativeMemory.pageSize());
    }

    /** A hugetlbfs memfd (MFD_HUGETLB) of the default huge page size; needs reserved huge pages. */
    public static Mapping hugetlb(String name, long length) {
        long huge = NativeMemory.hugePageSize();
        if (huge == 0) throw new UffdException("memfd_create", name + ", MFD_HUGETLB: kernel has no huge pages", Errno.EINVAL);
        return file(Kind.HUGETLB, name, length, NativeMemory.MFD_CLOEXEC | NativeMemory.MFD_HUGETLB, huge);
    }

    private static Mapping file(Kind kind, String name, long length, int mfdFlags, long pageSize) {
        checkLength(length, pageSize);
        int fd = NativeMemory.memfdCreate(name, mfdFlags);
        try {
            NativeMemory.ftruncate(fd, length);
            long a = NativeMemory.mmap(length, NativeMemory.PROT_READ | NativeMemory.PROT_WRITE,
                    NativeMemory.MAP_SHARED, fd, 0);
            return new Mapping(kind, a, length, fd, pageSize);
        } catch (UffdException e) {
            NativeMemory.close(fd);
            throw e;
        }
    }

    private static void checkLength(long length, long pageSize) {
        if (length <= 0 || length % pageSize != 0)
            throw new IllegalArgumentException("length " + length + " is not a positive multiple of the page size " + pageSize);
    }

    public Kind kind() { return kind; }

    public long address() { return address; }

    public long length() { return length; }

    /** The backing file descriptor, -1 for anonymous memory. */
    public int fd() { return fd; }

    public long pageSize() { return pageSize; }

    /**
     * Drops the pages of {@code [offset, offset+len)} so that the next access faults: MADV_DONTNEED
     * for private memory, a punched hole for files (MADV_DONTNEED alone would leave the page cache).
     */
    public void discard(long offset, long len) {
        if (offset < 0 || len < 0 || offset > length - len)
            throw new IllegalArgumentException("discard [" + offset + ", +" + len + ") outside mapping of " + length);
        switch (kind) {
            case ANONYMOUS: NativeMemory.madvise(address + offset, len, NativeMemory.MADV_DONTNEED); break;
            case SHARED: NativeMemory.madvise(address + offset, len, NativeMemory.MADV_REMOVE); break;
            default: NativeMemory.punchHole(fd, offset, len);
                     NativeMemory.madvise(address + offset, len, NativeMemory.MADV_DONTNEED);
        }
    }

    /** {@link #discard(long, long)} of n ranges, batched where the kernel allows it (not for hugetlbfs files). */
    public void discard(long[] offsets, long[] lengths, int n) {
        for (int i = 0; i < n; i++) {
            if (offsets[i] < 0 || lengths[i] < 0 || offsets[i] > length - lengths[i])
                throw new IllegalArgumentException("discard [" + offsets[i] + ", +" + lengths[i] + ") outside mapping of " + length);
        }
        if (kind != Kind.ANONYMOUS && kind != Kind.SHARED) {
            for (int i = 0; i < n; i++) discard(offsets[i], lengths[i]);
            return;
        }
        long[] addrs = new long[n];
        for (int i = 0; i < n; i++) addrs[i] = address + offsets[i];
        NativeMemory.madvise(addrs, lengths, n, kind == Kind.ANONYMOUS ? NativeMemory.MADV_DONTNEED : NativeMemory.MADV_REMOVE);
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        NativeMemory.munmap(address, length);
        if (fd >= 0) NativeMemory.close(fd);
    }

    @Override
    public String toString() {
        return String.format("Mapping[%s, 0x%x, %d bytes, page %d]", kind, address, length, pageSize);
    }
}
