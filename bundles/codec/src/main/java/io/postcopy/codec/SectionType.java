package io.postcopy.codec;

/** The byte that starts every top-level record of the main stream (QEMU_VM_*). */
public enum SectionType {
    EOF(0x00),
    START(0x01),
    PART(0x02),
    END(0x03),
    FULL(0x04),
    /** Only inside device state; never top level. */
    SUBSECTION(0x05),
    /** JSON description after EOF of a precopy stream; not sent during postcopy. */
    VMDESCRIPTION(0x06),
    CONFIGURATION(0x07),
    COMMAND(0x08),
    FOOTER(0x7e);

    private static final SectionType[] BY_CODE = new SectionType[256];

    static {
        for (SectionType t : values()) {
            BY_CODE[t.code] = t;
        }
    }

    private final int code;

    SectionType(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** @return the type, or {@code null} for a byte that is no section type */
    public static SectionType of(int code) {
        return code >= 0 && code < 256 ? BY_CODE[code] : null;
    }
}
