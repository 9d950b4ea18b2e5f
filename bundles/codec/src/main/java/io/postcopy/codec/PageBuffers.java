package io.postcopy.codec;

import io.postcopy.codec.internal.NativeMemory;

import java.nio.ByteBuffer;

/** Native addresses of direct buffers, for page handlers that place pages with {@code UFFDIO_COPY}. */
public final class PageBuffers {
    private PageBuffers() {
    }

    /**
     * @return the native address of {@code direct}'s byte 0; a page handed to {@link StreamHandler#onPage}
     *         at {@code position} is at {@code address(src) + position}
     */
    public static long address(ByteBuffer direct) {
        return NativeMemory.address(direct);
    }
}
