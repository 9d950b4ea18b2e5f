package io.postcopy.shell.internal;

import io.postcopy.ramblock.RamBlock;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Why the kernel refused memory for a block, from what it publishes: {@code /proc/meminfo}, the overcommit policy,
 * the JVM's own address space ({@code /proc/self/maps}) and its RLIMIT_AS. A bare {@code mmap(...) failed: ENOMEM}
 * says nothing an operator can act on (issue 17).
 */
final class MemoryReport {
    /** x86-64 without 5-level paging: user space ends at 2^47 minus a guard page. */
    private static final long USER_SPACE_END = (1L << 47) - 4096;

    /** What the host said when it was read; -1 where it could not be read. */
    record Host(Map<String, Long> meminfo, int overcommit, int overcommitRatio, long largestFreeRange, long addressSpaceLimit) {
        long get(String field) {
            return meminfo.getOrDefault(field, -1L);
        }
    }

    private MemoryReport() {}

    static Host read() {
        Map<String, Long> info = new HashMap<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                int colon = line.indexOf(':');
                if (colon < 0) continue;
                String[] f = line.substring(colon + 1).trim().split("\\s+");
                long v = Long.parseLong(f[0]);
                info.put(line.substring(0, colon), f.length > 1 && f[1].equals("kB") ? v * 1024 : v);
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or unreadable: the fields are reported as unknown
        }
        return new Host(info, (int) number("/proc/sys/vm/overcommit_memory"), (int) number("/proc/sys/vm/overcommit_ratio"),
                largestFreeRange(), addressSpaceLimit());
    }

    /** One line: what was asked, what the host has, and which limit refused it. */
    static String whyNot(String name, long bytes, RamBlock.Backing kind, Host h) {
        StringBuilder sb = new StringBuilder("not enough memory for block \"" + name + "\" of " + Sizes.human(bytes)
                + " (" + kind.name().toLowerCase(java.util.Locale.ROOT) + "): the kernel refused the mapping (ENOMEM). ");
        sb.append("This host: MemAvailable ").append(size(h.get("MemAvailable"))).append(" of MemTotal ")
                .append(size(h.get("MemTotal"))).append(", swap ").append(size(h.get("SwapTotal")));
        sb.append("; vm.overcommit_memory=").append(h.overcommit() < 0 ? "?" : Integer.toString(h.overcommit()));
        sb.append(switch (h.overcommit()) {
            case 0 -> " (heuristic: one mapping may not exceed RAM + swap, unless mapped without reserve as anon and memfd blocks are)";
            case 1 -> " (always: memory is never reserved up front)";
            case 2 -> " (strict: every mapping is reserved against CommitLimit)";
            default -> "";
        });
        long limit = h.get("CommitLimit"), committed = h.get("Committed_AS");
        sb.append("; CommitLimit ").append(size(limit)).append(", Committed_AS ").append(size(committed));
        if (kind == RamBlock.Backing.HUGETLB) {
            long free = h.get("HugePages_Free"), page = h.get("Hugepagesize");
            sb.append("; free huge pages ").append(free < 0 || page < 0 ? "?" : size(free * page));
        }
        sb.append("; the largest free range of this JVM's address space: ").append(size(h.largestFreeRange()))
                .append(" (x86-64 gives a process 128 TiB)");
        if (h.addressSpaceLimit() > 0) sb.append(", ulimit -v ").append(size(h.addressSpaceLimit()));
        sb.append(". ").append(cause(bytes, kind, h));
        return sb.toString();
    }

    /** The limit that explains the refusal, the most specific first. */
    private static String cause(long bytes, RamBlock.Backing kind, Host h) {
        long avail = h.get("MemAvailable");
        String hint = avail > 0 ? " A block larger than MemAvailable (" + Sizes.human(avail) + ") can be created but not "
                + "filled: a migration into it fails once the host runs out." : "";
        if (kind == RamBlock.Backing.HUGETLB) {
            long free = h.get("HugePages_Free"), page = h.get("Hugepagesize");
            if (free >= 0 && page > 0 && bytes > free * page)
                return "Limit: free huge pages (" + size(free * page) + "); reserve more with vm.nr_hugepages.";
        }
        if (h.addressSpaceLimit() > 0 && bytes > h.addressSpaceLimit())
            return "Limit: the JVM's ulimit -v (RLIMIT_AS)." + hint;
        if (h.largestFreeRange() >= 0 && bytes > h.largestFreeRange())
            return "Limit: address space: no free range of the JVM's address space is that large." + hint;
        if (h.overcommit() == 2 && limit(h) >= 0)
            return "Limit: strict overcommit: at most CommitLimit - Committed_AS = " + size(limit(h)) + " more can be "
                    + "committed (vm.overcommit_ratio " + h.overcommitRatio() + ", swap raise it)." + hint;
        long total = h.get("MemTotal"), swap = h.get("SwapTotal");
        if (h.overcommit() == 0 && total > 0 && swap >= 0 && bytes > total + swap)
            return "Limit: heuristic overcommit: more than RAM + swap (" + size(total + swap) + ")." + hint;
        return "No published limit explains it (vm.max_map_count, a cgroup or a security policy may)." + hint;
    }

    private static long limit(Host h) {
        long limit = h.get("CommitLimit"), committed = h.get("Committed_AS");
        return limit < 0 || committed < 0 ? -1 : Math.max(0, limit - committed);
    }

    private static String size(long bytes) {
        return bytes < 0 ? "?" : Sizes.human(bytes);
    }

    private static long number(String file) {
        try {
            return Long.parseLong(Files.readString(Path.of(file)).trim());
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** The largest gap between the mappings of this process below the end of user space, or -1. */
    static long largestFreeRange() {
        List<long[]> maps = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
                int dash = line.indexOf('-'), space = line.indexOf(' ');
                if (dash < 0 || space < dash) continue;
                maps.add(new long[] {Long.parseUnsignedLong(line.substring(0, dash), 16),
                        Long.parseUnsignedLong(line.substring(dash + 1, space), 16)});
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        maps.sort((a, b) -> Long.compareUnsigned(a[0], b[0]));
        long best = 0, at = 1L << 16;     // vm.mmap_min_addr's usual 64 KiB
        for (long[] m : maps) {
            if (Long.compareUnsigned(m[0], USER_SPACE_END) >= 0) break;   // [vsyscall] lies above user space
            if (m[0] > at) best = Math.max(best, m[0] - at);
            at = Math.max(at, m[1]);
        }
        if (USER_SPACE_END > at) best = Math.max(best, USER_SPACE_END - at);
        return best;
    }

    /** RLIMIT_AS from /proc/self/limits in bytes, 0 when unlimited, -1 when unknown. */
    private static long addressSpaceLimit() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/limits"))) {
                if (!line.startsWith("Max address space")) continue;
                String soft = line.substring("Max address space".length()).trim().split("\\s+")[0];
                return soft.equals("unlimited") ? 0 : Long.parseLong(soft);
            }
        } catch (IOException | RuntimeException e) {
            // unknown
        }
        return -1;
    }
}
