package io.postcopy.codec;

/** Scalar constants of the wire format (QEMU 7.2 {@code migration/savevm.h}, {@code ram.c}, {@code postcopy-ram.c}). */
public final class Wire {
    private Wire() {
    }

    /** {@code "QEVM"}. */
    public static final int MAGIC = 0x5145564d;
    /**
     * First be32 of a QEMU multifd channel ({@code MULTIFD_MAGIC}, its {@code MultiFDInit_t} packet): with the
     * multifd capability the source opens extra connections that start with this instead of {@link #MAGIC}.
     */
    public static final int MULTIFD_MAGIC = 0x11223344;

    /**
     * First be32 of an extra channel opened by our own source ("PCCH"), followed by the migration's
     * {@link #CHANNEL_TOKEN_BYTES}-byte secret: the channel proves which migration it belongs to. Not QEMU's.
     */
    public static final int CHANNEL_MAGIC = 0x50434348;

    /**
     * First be32 of a connection our source opens to resume a paused migration ("PCRS"), followed by the
     * migration's channel token; the stream then goes on with no header (postcopy recovery).
     */
    public static final int RESUME_MAGIC = 0x50435253;

    /** Length of the per-migration channel secret. */
    public static final int CHANNEL_TOKEN_BYTES = 32;

    /** The command number of {@link CommandType#CHANNEL_TOKEN} ("PC"): far above QEMU's own numbers. */
    public static final int CHANNEL_TOKEN_COMMAND = 0x5043;
    /**
     * The command number of {@link CommandType#PEER_ID} and the return-path type of {@link ReturnPathType#PEER_ID}
     * ("PI"): ours, sent only between our own source and destination, so each side can show the other's id.
     */
    public static final int PEER_ID_NUMBER = 0x5049;
    /** Longest migration id {@code PEER_ID} carries. */
    public static final int PEER_ID_MAX = 32;
    /** The only stream version accepted (QEMU_VM_FILE_VERSION). */
    public static final int VERSION = 3;
    /** The seed's {@code MAX_DISCARDS_PER_COMMAND}. */
    public static final int MAX_DISCARDS_PER_COMMAND = 12;
    /** First byte of every {@code POSTCOPY_RAM_DISCARD} payload. */
    public static final int DISCARD_VERSION = 0;
    /** Value carried by {@code RESUME_ACK}. */
    public static final int RESUME_ACK_VALUE = 1;
    /** Trailer after a return-path received-pages bitmap. */
    public static final long RECV_BITMAP_ENDING = 0x0123456789abcdefL;
    /** Target page size of x86 (and of every RAM record). */
    public static final int DEFAULT_TARGET_PAGE_SIZE = 4096;
    /** Largest return-path payload QEMU's source accepts (its receive buffer). */
    public static final int MAX_RETURN_PATH_PAYLOAD = 512;
    /** Largest package QEMU itself sends ({@code MAX_VM_CMD_PACKAGED_SIZE}). */
    public static final int QEMU_MAX_PACKAGED_SIZE = 1 << 24;
    /** Our default cap on a package's length. */
    public static final int DEFAULT_MAX_PACKAGED_SIZE = 64 << 20;
    /** Our cap on the number of RAM blocks in a MEM_SIZE list. */
    public static final int MAX_RAM_BLOCKS = 256;
    /** Our cap on the machine name in the configuration section. */
    public static final int MAX_CONFIGURATION_NAME = 256;
}
