package io.postcopy.uffd.internal;

import com.kenai.jffi.MemoryIO;
import jnr.ffi.LibraryLoader;
import jnr.ffi.LibraryOption;
import jnr.ffi.Runtime;

/** The one loaded libc proxy, errno access and raw memory access (jffi's Unsafe-backed MemoryIO). */
public final class Native {
    public static final LibC LIBC;
    public static final Runtime RUNTIME;
    public static final MemoryIO MEM = MemoryIO.getInstance();

    static {
        LIBC = LibraryLoader.create(LibC.class)
                .option(LibraryOption.LoadNow, Boolean.TRUE)
                .search("/lib/x86_64-linux-gnu")
                .load("c");
        RUNTIME = Runtime.getRuntime(LIBC);
    }

    private Native() {}

    public static int errno() {
        return RUNTIME.getLastError();
    }

    /** Per-thread scratch memory for ioctl argument structs: allocated once per thread, never freed
     *  (a few hundred bytes per thread that ever calls in), so no call allocates. */
    private static final ThreadLocal<long[]> SCRATCH = ThreadLocal.withInitial(
            () -> new long[] {MEM.allocateMemory(256, true)});

    public static long scratch() {
        return SCRATCH.get()[0];
    }
}
