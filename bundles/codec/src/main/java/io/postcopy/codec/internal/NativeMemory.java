package io.postcopy.codec.internal;

import java.lang.reflect.Field;
import java.nio.Buffer;
import java.nio.ByteBuffer;

/**
 * Raw memory access for the native-address page path, through {@code sun.misc.Unsafe} (module
 * jdk.unsupported, open to all). Loaded only when that path is used.
 */
public final class NativeMemory {
    private NativeMemory() {
    }

    private static final sun.misc.Unsafe U;
    private static final long ADDRESS_FIELD;
    private static final long BYTE_ARRAY_BASE;

    static {
        try {
            Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            U = (sun.misc.Unsafe) f.get(null);
            ADDRESS_FIELD = U.objectFieldOffset(Buffer.class.getDeclaredField("address"));
            BYTE_ARRAY_BASE = U.arrayBaseOffset(byte[].class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Native address of a direct buffer's first byte (index 0). */
    public static long address(ByteBuffer direct) {
        if (!direct.isDirect()) {
            throw new IllegalArgumentException("not a direct buffer");
        }
        return U.getLong(direct, ADDRESS_FIELD);
    }

    /** Copies {@code len} bytes from native {@code address} to {@code dst[index ..]} (absolute; dst not moved). */
    public static void copyToBuffer(long address, ByteBuffer dst, int index, int len) {
        if (index < 0 || len < 0 || index > dst.limit() - len) {
            throw new IndexOutOfBoundsException(index + "+" + len);
        }
        if (dst.isDirect()) {
            U.copyMemory(null, address, null, address(dst) + index, len);
        } else if (dst.hasArray()) {
            U.copyMemory(null, address, dst.array(), BYTE_ARRAY_BASE + dst.arrayOffset() + index, len);
        } else {
            throw new IllegalArgumentException("read-only heap buffer");
        }
    }

    /** Copies {@code len} bytes from {@code src[index ..]} to native {@code address}. */
    public static void copyFromBuffer(ByteBuffer src, int index, long address, int len) {
        if (index < 0 || len < 0 || index > src.limit() - len) {
            throw new IndexOutOfBoundsException(index + "+" + len);
        }
        if (src.isDirect()) {
            U.copyMemory(null, address(src) + index, null, address, len);
        } else {
            U.copyMemory(src.array(), BYTE_ARRAY_BASE + src.arrayOffset() + index, null, address, len);
        }
    }

    public static long allocate(long bytes) {
        return U.allocateMemory(bytes);
    }

    public static void free(long address) {
        U.freeMemory(address);
    }

    public static void putByte(long address, byte v) {
        U.putByte(address, v);
    }

    public static byte getByte(long address) {
        return U.getByte(address);
    }
}
