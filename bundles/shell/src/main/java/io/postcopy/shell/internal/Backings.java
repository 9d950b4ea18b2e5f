package io.postcopy.shell.internal;

import io.postcopy.ramblock.RamBlock;
import java.util.List;
import java.util.Locale;

/** The backing kinds a block can be created with from the shell, by their shell names. */
public final class Backings {
    /** The names, in the order completion offers them. */
    public static final List<String> NAMES = List.of("anon", "memfd", "hugetlb");

    private Backings() {}

    public static RamBlock.Backing parse(String name) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "anon": case "anonymous": return RamBlock.Backing.ANONYMOUS;
            case "memfd": case "shmem": return RamBlock.Backing.MEMFD;
            case "hugetlb": case "hugetlbfs": return RamBlock.Backing.HUGETLB;
            default:
                throw new IllegalArgumentException("backing \"" + name + "\" is not one of " + String.join(", ", NAMES));
        }
    }
}
