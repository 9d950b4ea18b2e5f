package io.postcopy.policy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The kernel's view of this process, as an independent witness of the policies. */
final class ProcStatus {
    private ProcStatus() {}

    /** Locked memory in kB (/proc/self/status VmLck). */
    static long lockedKb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith("VmLck:")) return Long.parseLong(line.substring(6).trim().split("\\s+")[0]);
            throw new IllegalStateException("no VmLck in /proc/self/status");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The VmFlags of the mapping containing {@code address} (/proc/self/smaps), e.g. "rd wr mr mw me ac nh". */
    static String vmFlags(long address) {
        try {
            boolean inside = false;
            for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
                int dash = line.indexOf('-'), space = line.indexOf(' ');
                if (dash > 0 && space > dash && line.substring(0, dash).matches("[0-9a-f]+")) {
                    long start = Long.parseUnsignedLong(line.substring(0, dash), 16);
                    long end = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
                    inside = address >= start && address < end;
                } else if (inside && line.startsWith("VmFlags:")) {
                    return line.substring(8).trim();
                }
            }
            throw new IllegalStateException(String.format("0x%x is not mapped", address));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
