package io.postcopy.codec;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * A decoded {@code PACKAGED} blob. QEMU puts LISTEN at its start, then the device sections, then PING and RUN.
 *
 * @param streamOffset     offset in the outer stream of the first package byte
 * @param leadingCommands  commands before the first device section
 * @param sections         device sections, opaque
 * @param trailingCommands commands after the last device section
 * @param bytes            the whole package, read-only
 */
public record PackageContents(long streamOffset, List<Command> leadingCommands, List<DeviceSection> sections,
                              List<Command> trailingCommands, ByteBuffer bytes) {
    public PackageContents {
        leadingCommands = List.copyOf(leadingCommands);
        sections = List.copyOf(sections);
        trailingCommands = List.copyOf(trailingCommands);
        bytes = bytes.asReadOnlyBuffer();
    }

    public int length() {
        return bytes.capacity();
    }
}
