package io.postcopy.codec;

/**
 * Flags in the low bits of a RAM record header ({@code RAM_SAVE_FLAG_*}). Exactly one of ZERO, MEM_SIZE,
 * PAGE, EOS per record, optionally with CONTINUE; the others are rejected as unsupported.
 */
public enum RamFlag {
    /** Obsolete in QEMU; never sent. */
    FULL(0x01, false),
    ZERO(0x02, true),
    MEM_SIZE(0x04, true),
    PAGE(0x08, true),
    EOS(0x10, true),
    CONTINUE(0x20, true),
    XBZRLE(0x40, false),
    HOOK(0x80, false),
    COMPRESS_PAGE(0x100, false),
    MULTIFD_FLUSH(0x200, false);

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

    RamFlag(int bit, boolean supported) {
        this.bit = bit;
        this.supported = supported;
    }

    public int bit() {
        return bit;
    }

    public boolean supported() {
        return supported;
    }

    /** The lowest flag set in {@code flags} that this codec refuses, or {@code null}. */
    public static RamFlag firstUnsupported(int flags) {
        for (RamFlag f : values()) {
            if (!f.supported && (flags & f.bit) != 0) {
                return f;
            }
        }
        return null;
    }
}
