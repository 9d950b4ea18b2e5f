package io.postcopy.codec;

/**
 * The command table ({@code QEMU_VM_COMMAND}, QEMU's {@code mig_cmd_args}): number, name and payload
 * length. The decoder looks the number up here and checks the length against this entry before it reads
 * a single payload byte.
 */
public enum CommandType {
    OPEN_RETURN_PATH(1, 0, 0),
    PING(2, 4, 4),
    /** 0 bytes, or 16: be64 page-size summary, be64 target page size. */
    POSTCOPY_ADVISE(3, 0, 16),
    POSTCOPY_LISTEN(4, 0, 0),
    POSTCOPY_RUN(5, 0, 0),
    /** u8 version 0, u8 name length, name, 0x00, then 1..12 pairs be64 start, be64 length. */
    POSTCOPY_RAM_DISCARD(6, 1 + 1 + 1 + 1 + 16, 1 + 1 + 255 + 1 + 16 * Wire.MAX_DISCARDS_PER_COMMAND),
    /** be32 N; the N package bytes follow and are not counted in the command length. */
    PACKAGED(7, 4, 4),
    ENABLE_COLO(8, 0, 0),
    POSTCOPY_RESUME(9, 0, 0),
    /** u8 name length, name. */
    RECV_BITMAP(10, 2, 256),
    /**
     * No payload. QEMU 10.0+ ({@code MIG_CMD_SWITCHOVER_START}): the source has stopped its guest and switches over
     * (at postcopy start, or at the end of precopy); sent unless the machine type is 9.2 or older
     * ({@code send-switchover-start=off}). A notification for devices that prepare early; nothing to answer.
     */
    SWITCHOVER_START(11, 0, 0),
    /**
     * Ours, not QEMU's (we never migrate to QEMU): the per-migration secret that the source's extra channel
     * presents as its first bytes ({@link Wire#CHANNEL_MAGIC}, then these {@link Wire#CHANNEL_TOKEN_BYTES}).
     */
    CHANNEL_TOKEN(Wire.CHANNEL_TOKEN_COMMAND, Wire.CHANNEL_TOKEN_BYTES, Wire.CHANNEL_TOKEN_BYTES),
    /**
     * Ours, not QEMU's: u8 length, the source's migration id ({@code out-N}); the destination answers with its own
     * on the return path ({@link ReturnPathType#PEER_ID}). QEMU never sends it, so a QEMU source never gets the answer.
     */
    PEER_ID(Wire.PEER_ID_NUMBER, 2, 1 + Wire.PEER_ID_MAX);

    /** Marks a variable length in {@link #fixedLength()}. */
    public static final int VARIABLE = -1;

    private static final CommandType[] BY_NUMBER = new CommandType[12];

    static {
        for (CommandType t : values()) {
            if (t.number < BY_NUMBER.length) BY_NUMBER[t.number] = t;
        }
    }

    private final int number;
    private final int minLength;
    private final int maxLength;

    CommandType(int number, int minLength, int maxLength) {
        this.number = number;
        this.minLength = minLength;
        this.maxLength = maxLength;
    }

    public int number() {
        return number;
    }

    /** Smallest payload length accepted. */
    public int minLength() {
        return minLength;
    }

    /** Largest payload length accepted. */
    public int maxLength() {
        return maxLength;
    }

    /** The length when it is fixed, else {@link #VARIABLE} (QEMU's {@code .len = -1}). */
    public int fixedLength() {
        return minLength == maxLength ? minLength : VARIABLE;
    }

    /** Whether {@code len} is a legal payload length for this command. */
    public boolean acceptsLength(int len) {
        if (this == POSTCOPY_ADVISE) {
            return len == 0 || len == 16;
        }
        return len >= minLength && len <= maxLength;
    }

    /** Text for error messages: what lengths are expected. */
    public String expectedLength() {
        if (this == POSTCOPY_ADVISE) {
            return "0 or 16 (" + name() + ")";
        }
        return (fixedLength() != VARIABLE ? String.valueOf(minLength) : minLength + ".." + maxLength) + " (" + name() + ")";
    }

    /** The range of QEMU command numbers known here, for error messages. */
    public static final String KNOWN_NUMBERS = "1..11";

    /** @return the type, or {@code null} for an unknown number (0 is QEMU's INVALID) */
    public static CommandType of(int number) {
        if (number == Wire.CHANNEL_TOKEN_COMMAND) return CHANNEL_TOKEN;
        if (number == Wire.PEER_ID_NUMBER) return PEER_ID;
        return number > 0 && number < BY_NUMBER.length ? BY_NUMBER[number] : null;
    }
}
