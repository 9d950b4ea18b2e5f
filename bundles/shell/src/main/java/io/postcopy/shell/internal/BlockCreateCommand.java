package io.postcopy.shell.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.shell.internal.completers.BackingCompleter;
import io.postcopy.uffd.NativeMemory;
import java.util.Locale;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** Creates a RAM block of fresh zeroed memory in the registry. */
@Command(scope = "postcopy", name = "block-create",
        description = "Creates a RAM block of fresh zeroed memory: [--backing anon|memfd|hugetlb] NAME SIZE (256M, 1G, 4096K)")
@Service
public class BlockCreateCommand extends PostcopyCommandSupport {

    @Argument(index = 0, name = "name", required = true, description = "Block name as on the wire (1..255 bytes of UTF-8)")
    String name;

    @Argument(index = 1, name = "size", required = true,
            description = "Size with an optional binary unit: 256M, 1G, 4096K, 8192; a multiple of the page size")
    String size;

    @Option(name = "--backing", aliases = "-b", description = "anon (default), memfd (shmem) or hugetlb (default huge page size)")
    @Completion(BackingCompleter.class)
    String backing = "anon";

    @Override
    protected Object doExecute() {
        RamBlock.Backing kind = Backings.parse(backing);
        long bytes = Sizes.parse("SIZE", size);
        long page = kind == RamBlock.Backing.HUGETLB ? NativeMemory.hugePageSize() : NativeMemory.pageSize();
        if (kind == RamBlock.Backing.HUGETLB && page <= 0)
            throw new IllegalArgumentException("this host has no huge pages; hugetlb blocks are unavailable");
        if (bytes % page != 0)
            throw new IllegalArgumentException("SIZE " + size + " (" + bytes + " bytes) is not a multiple of the "
                    + kind.name().toLowerCase(Locale.ROOT) + " page size " + Sizes.exact(page));
        if (registry.byName(name) != null)
            throw new IllegalArgumentException("a RAM block named \"" + name + "\" exists already");
        RamBlock b;
        try {
            b = registry.create(name, bytes, kind);
        } catch (io.postcopy.uffd.UffdException e) {
            if (e.errno() != io.postcopy.uffd.Errno.ENOMEM) throw e;
            throw new IllegalStateException(MemoryReport.whyNot(name, bytes, kind, MemoryReport.read()), e);
        }
        out().printf("Created block %s: %s (%d bytes), %s, %s pages, at 0x%016x%n", b.idstr(), Sizes.exact(b.usedLength()),
                b.usedLength(), b.backing().name().toLowerCase(Locale.ROOT), Sizes.exact(b.pageSize()), b.hostAddress());
        return null;
    }
}
