package io.postcopy.uffd;

import java.util.EnumSet;
import java.util.Set;

/** The {@code _UFFDIO_*} command numbers, as bits of the ioctl masks that UFFDIO_API and UFFDIO_REGISTER return. */
public enum UffdIoctl {
    REGISTER(0x00), UNREGISTER(0x01), WAKE(0x02), COPY(0x03), ZEROPAGE(0x04), MOVE(0x05),
    WRITEPROTECT(0x06), CONTINUE(0x07), POISON(0x08), API(0x3F);

    private final long bit;

    UffdIoctl(int nr) { this.bit = 1L << nr; }

    public long bit() { return bit; }

    public static Set<UffdIoctl> fromMask(long mask) {
        EnumSet<UffdIoctl> set = EnumSet.noneOf(UffdIoctl.class);
        for (UffdIoctl i : values()) if ((mask & i.bit) != 0) set.add(i);
        return set;
    }
}
