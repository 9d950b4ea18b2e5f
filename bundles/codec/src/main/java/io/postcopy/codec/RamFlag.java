package io.postcopy.codec;

/**
 * Flags in the low bits of a RAM record header ({@code RAM_SAVE_FLAG_*}). Exactly one of ZERO, MEM_SIZE,
 * PAGE, EOS per record, optionally with CONTINUE; the others are rejected as unsupported.
 */
public enum RamFlag {
    /** Obsolete in QEMU; never sent. */
    FULL(0x01, false, null),
    ZERO(0x02, true, null),
    MEM_SIZE(0x04, true, null),
    PAGE(0x08, true, null),
    EOS(0x10, true, null),
    CONTINUE(0x20, true, null),
    XBZRLE(0x40, false, "xbzrle"),
    /** RDMA's RAM hooks ({@code -incoming rdma:}, capability rdma-pin-all). */
    HOOK(0x80, false, "rdma"),
    COMPRESS_PAGE(0x100, false, "compress"),
    /** QEMU 8.0+ multifd sync point in the main stream. */
    MULTIFD_FLUSH(0x200, false, "multifd");

    /** Every flag bit this codec refuses. */
    public static final int UNSUPPORTED_MASK;
    /** Every flag bit defined at all. */
    public static final int KNOWN_MASK;

    static {
        int u = 0;
        int k = 0;
        for (RamFlag f : values()) {
            k |= f.bit;
            if (!f.supported) {
                u |= f.bit;
            }
        }
        UNSUPPORTED_MASK = u;
        KNOWN_MASK = k;
    }

    private final int bit;
    private final boolean supported;
    private final String capability;

    RamFlag(int bit, boolean supported, String capability) {
        this.bit = bit;
        this.supported = supported;
        this.capability = capability;
    }

    /**
     * The QEMU migration capability (as {@code migrate-set-capabilities} names it) that makes a source send
     * this flag, or {@code null} for the flags of a plain stream and for the obsolete FULL.
     */
    public String capability() {
        return capability;
    }

    public int bit() {
        return bit;
    }

    public boolean supported() {
        return supported;
    }

    private static final RamFlag[] ALL = values();

    /** The lowest flag set in {@code flags} that this codec refuses, or {@code null}. Called per record: no allocation. */
    public static RamFlag firstUnsupported(int flags) {
        if ((flags & UNSUPPORTED_MASK) == 0) {
            return null;
        }
        for (RamFlag f : ALL) {
            if (!f.supported && (flags & f.bit) != 0) {
                return f;
            }
        }
        return null;
    }
}
