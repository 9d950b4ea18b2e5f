package io.postcopy.workload;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.uffd.NativeMemory;

/** A registry of the test's own, and page access for assertions (through native copies, as the workload does). */
final class Blocks implements AutoCloseable {
    static final int PAGE = Workload.PAGE_SIZE;
    final RamBlockRegistry registry = RamBlocks.newRegistry();
    private final long buf = NativeMemory.allocate(PAGE);

    RamBlock create(String name, long pages) {
        return registry.create(name, pages * PAGE, RamBlock.Backing.ANONYMOUS);
    }

    /** Word 0 of a page: its generation, or 0 for a zero or generation-0 page. */
    long generation(RamBlock b, long page) {
        NativeMemory.nativeCopy(b.hostAddress() + page * PAGE, buf, PAGE);
        return NativeMemory.getLong(buf);
    }

    boolean isZero(RamBlock b, long page) {
        NativeMemory.nativeCopy(b.hostAddress() + page * PAGE, buf, PAGE);
        return NativeMemory.isZero(buf, PAGE);
    }

    byte[] bytes(RamBlock b, long page) {
        byte[] out = new byte[PAGE];
        NativeMemory.nativeCopy(b.hostAddress() + page * PAGE, buf, PAGE);
        NativeMemory.get(buf, out, 0, PAGE);
        return out;
    }

    void put(RamBlock b, long page, byte[] content) {
        NativeMemory.put(content, 0, PAGE, buf);
        NativeMemory.nativeCopy(buf, b.hostAddress() + page * PAGE, PAGE);
    }

    @Override
    public void close() {
        registry.removeAll();
        NativeMemory.free(buf);
    }
}
