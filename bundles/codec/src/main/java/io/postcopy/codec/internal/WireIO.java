package io.postcopy.codec.internal;

import io.postcopy.codec.CodecException;
import io.postcopy.codec.CodecException.Kind;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Absolute big-endian reads with checks, shared by the decoders. Buffers must be in big-endian order. */
public final class WireIO {
    private WireIO() {
    }

    /**
     * Reads a counted string's bytes {@code [p, p + len)} as an idstr: 1..255 printable ASCII bytes.
     *
     * @param off stream offset of the length byte
     */
    public static String name(ByteBuffer b, int p, int len, long off, String field) throws CodecException {
        if (len == 0) {
            throw new CodecException(Kind.MALFORMED, off, field + " length", 0, "1..255");
        }
        byte[] s = new byte[len];
        for (int i = 0; i < len; i++) {
            byte c = b.get(p + i);
            if (c < 0x20 || c > 0x7e) {
                throw new CodecException(Kind.MALFORMED, off + 1 + i, field, "byte 0x" + Integer.toHexString(c & 0xff),
                        "printable ASCII");
            }
            s[i] = c;
        }
        return new String(s, StandardCharsets.ISO_8859_1);
    }

    /** Writes a counted string (u8 length + bytes). */
    public static void putName(ByteBuffer b, String s) {
        byte[] n = s.getBytes(StandardCharsets.ISO_8859_1);
        if (n.length == 0 || n.length > 255) {
            throw new IllegalArgumentException("name must have 1..255 bytes: " + s);
        }
        b.put((byte) n.length).put(n);
    }

    public static int u8(ByteBuffer b, int p) {
        return b.get(p) & 0xff;
    }

    public static int u16(ByteBuffer b, int p) {
        return b.getShort(p) & 0xffff;
    }

    public static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }
}
