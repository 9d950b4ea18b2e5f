package io.postcopy.codec;

import java.io.IOException;

/**
 * The one exception the codec raises for bad input: it names the stream offset, the field, the value
 * found and what was expected.
 *
 * <p>It extends {@link IOException} on purpose: the codec reads from channels and calls handlers that do
 * I/O, so every caller already handles {@code IOException}; a malformed or unsupported stream is a failure
 * of the peer on the other end of that I/O, not a programming error in the caller, and so must not escape
 * as an unchecked exception that a fault thread or migration loop would not expect. Programming errors of
 * the caller (an encoder asked to write a 300-byte block name) remain {@link IllegalArgumentException}.
 */
public final class CodecException extends IOException {
    private static final long serialVersionUID = 1L;

    /** What kind of rule the input broke. */
    public enum Kind {
        /** The bytes do not follow the layout (wrong length, wrong marker, bad order). */
        MALFORMED,
        /** A well-formed feature this codec does not implement (XBZRLE, compression, ...). */
        UNSUPPORTED,
        /** A length beyond a configured cap (package size, block count). */
        LIMIT,
        /** A page, discard or request outside its RAM block, or a block unknown to the validator. */
        OUT_OF_BLOCK,
        /** The input ended inside a record. */
        TRUNCATED
    }

    private final Kind kind;
    private final long offset;
    private final String field;
    private final String value;
    private final String expected;

    public CodecException(Kind kind, long offset, String field, Object value, String expected) {
        super(format(kind, offset, field, value, expected));
        this.kind = kind;
        this.offset = offset;
        this.field = field;
        this.value = String.valueOf(value);
        this.expected = expected;
    }

    private static String format(Kind kind, long offset, String field, Object value, String expected) {
        return kind + " at offset " + offset + ": " + field + " = " + value + ", expected " + expected;
    }

    public Kind kind() {
        return kind;
    }

    /** Byte offset in the stream of the field at fault (or of the record holding it). */
    public long offset() {
        return offset;
    }

    public String field() {
        return field;
    }

    public String value() {
        return value;
    }

    public String expected() {
        return expected;
    }
}
