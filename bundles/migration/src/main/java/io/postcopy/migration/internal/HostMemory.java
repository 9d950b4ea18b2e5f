package io.postcopy.migration.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What the host can give an incoming migration, from {@code /proc/meminfo}: read when a migration asks. */
final class HostMemory {
    private HostMemory() {}

    /** MemAvailable in bytes (the kernel's estimate of what can be allocated without swapping), or -1. */
    static long available() {
        return field("MemAvailable:");
    }

    /** Free huge pages of the default size, in bytes (HugePages_Free × Hugepagesize), or -1. */
    static long hugePagesFree() {
        long free = field("HugePages_Free:"), size = field("Hugepagesize:");
        return free < 0 || size < 0 ? -1 : free / 1024 * size;
    }

    /** A /proc/meminfo value: "kB" values in bytes; counts (HugePages_*) times 1024, which callers undo. */
    private static long field(String name) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (!line.startsWith(name)) continue;
                String[] f = line.substring(name.length()).trim().split("\\s+");
                return Long.parseLong(f[0]) * 1024;
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or unreadable: no figure
        }
        return -1;
    }
}
