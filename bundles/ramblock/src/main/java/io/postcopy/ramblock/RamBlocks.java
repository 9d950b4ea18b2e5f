package io.postcopy.ramblock;

import io.postcopy.ramblock.internal.RamList;

/** Entry point for use without an OSGi framework (tests, benchmarks, tools). */
public final class RamBlocks {
    private RamBlocks() {}

    /** A new, empty registry of one's own; call {@link RamBlockRegistry#removeAll()} to free its memory. */
    public static RamBlockRegistry newRegistry() {
        return new RamList();
    }
}
