package io.postcopy.codec;

/**
 * The return-path table (QEMU's {@code rp_cmd_args}): be16 type, be16 length, payload. The decoder checks
 * the length against this entry before reading the payload.
 */
public enum ReturnPathType {
    /** be32 status, 0 = ok. */
    SHUT(1, 4, 4),
    /** be32 echo of a PING. */
    PONG(2, 4, 4),
    /** be64 start, be32 length, u8 name length, name (no terminator). */
    REQ_PAGES_ID(3, 8 + 4 + 1 + 1, 8 + 4 + 1 + 255),
    /** be64 start, be32 length; same block as the last REQ_PAGES_ID. */
    REQ_PAGES(4, 12, 12),
    /** u8 name length, name; then, outside the length: be64 size, size bytes of bitmap, be64 ending. */
    RECV_BITMAP(5, 2, 256),
    /** be32 1. */
    RESUME_ACK(6, 4, 4),
    /** No payload (QEMU 8.1+, accepted here for completeness). */
    SWITCHOVER_ACK(7, 0, 0),
    /** Ours ({@link Wire#PEER_ID_NUMBER}): u8 length, the destination's migration id; only in answer to PEER_ID. */
    PEER_ID(Wire.PEER_ID_NUMBER, 2, 1 + Wire.PEER_ID_MAX);

    private static final ReturnPathType[] BY_NUMBER = new ReturnPathType[8];

    static {
        for (ReturnPathType t : values()) {
            if (t.number < BY_NUMBER.length) BY_NUMBER[t.number] = t;
        }
    }

    private final int number;
    private final int minLength;
    private final int maxLength;

    ReturnPathType(int number, int minLength, int maxLength) {
        this.number = number;
        this.minLength = minLength;
        this.maxLength = maxLength;
    }

    public int number() {
        return number;
    }

    public int minLength() {
        return minLength;
    }

    public int maxLength() {
        return maxLength;
    }

    public boolean acceptsLength(int len) {
        return len >= minLength && len <= maxLength;
    }

    public String expectedLength() {
        return (minLength == maxLength ? String.valueOf(minLength) : minLength + ".." + maxLength) + " (" + name() + ")";
    }

    /** @return the type, or {@code null} for an unknown number */
    public static ReturnPathType of(int number) {
        if (number == Wire.PEER_ID_NUMBER) return PEER_ID;
        return number > 0 && number < BY_NUMBER.length ? BY_NUMBER[number] : null;
    }
}
