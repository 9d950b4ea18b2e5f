package io.postcopy.ramblock;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock.Backing;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** Lookups run lock-free while a writer keeps adding and removing blocks around the permanent ones. */
class ConcurrentLookupTest {
    private static final long PAGE = NativeMemory.pageSize();
    private static final long RUN_NANOS = 1_500_000_000L;
    private static final int SLOTS = 32;

    @Test
    void lookupsStayCorrectWhileOtherThreadsAddAndRemoveBlocks() throws Exception {
        RamBlockRegistry registry = RamBlocks.newRegistry();
        List<RamBlock> permanent = new ArrayList<>();
        // Transient blocks adopted from this pool interleave with the permanent blocks' addresses.
        try (Mapping pool = Mapping.anonymous(2 * SLOTS * PAGE)) {
            for (int i = 0; i < 8; i++)
                permanent.add(registry.create("perm" + i, (1 + i) * PAGE, i % 2 == 0 ? Backing.ANONYMOUS : Backing.MEMFD));
            // The published transient blocks, which readers look up while the writer may be removing them.
            ConcurrentLinkedQueue<RamBlock> recent = new ConcurrentLinkedQueue<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicLong lookups = new AtomicLong(), changes = new AtomicLong();
            long deadline = System.nanoTime() + RUN_NANOS;

            Thread writer = new Thread(() -> {
                ThreadLocalRandom rnd = ThreadLocalRandom.current();
                ArrayDeque<String> created = new ArrayDeque<>();
                boolean[] adopted = new boolean[SLOTS];
                int serial = 0;
                try {
                    while (System.nanoTime() < deadline && failure.get() == null) {
                        if (rnd.nextBoolean()) {
                            int slot = rnd.nextInt(SLOTS);
                            String name = "slot" + slot;
                            if (adopted[slot]) {
                                registry.remove(name);
                            } else {
                                RamBlock b = registry.adopt(name, pool.address() + 2 * slot * PAGE, 2 * PAGE, PAGE);
                                check(registry.blockOf(b.hostAddress() + PAGE) == b, "writer sees its adopted block");
                                recent.add(b);
                            }
                            adopted[slot] = !adopted[slot];
                        } else if (created.size() < 6 && rnd.nextBoolean()) {
                            String name = "t" + serial++;
                            RamBlock b = registry.create(name, (1 + rnd.nextInt(4)) * PAGE, Backing.ANONYMOUS);
                            check(registry.blockOf(b.hostAddress()) == b, "writer sees its created block");
                            created.add(name);
                            recent.add(b);
                        } else if (!created.isEmpty()) {
                            registry.remove(created.poll());
                        }
                        while (recent.size() > 16) recent.poll();
                        changes.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }, "registry-writer");

            Runnable reader = () -> {
                ThreadLocalRandom rnd = ThreadLocalRandom.current();
                try {
                    while (System.nanoTime() < deadline && failure.get() == null) {
                        for (int i = 0; i < 1000; i++) {
                            RamBlock want = permanent.get(rnd.nextInt(permanent.size()));
                            long addr = want.hostAddress() + rnd.nextLong(want.maxLength());
                            RamBlock got = registry.blockOf(addr);
                            if (got != want) throw new AssertionError(String.format("blockOf(0x%x) = %s, want %s", addr, got, want));
                        }
                        for (RamBlock t : recent) {
                            long addr = t.hostAddress() + rnd.nextLong(t.maxLength());
                            RamBlock got = registry.blockOf(addr);
                            // Present or just removed: either its own block or nothing, never a neighbour.
                            if (got != null && !got.contains(addr))
                                throw new AssertionError(String.format("blockOf(0x%x) = %s, which does not contain it", addr, got));
                        }
                        check(registry.byName("perm3") == permanent.get(3), "byName finds a permanent block");
                        List<RamBlock> snapshot = registry.blocks();
                        for (int i = 1; i < snapshot.size(); i++)
                            check(snapshot.get(i - 1).offset() < snapshot.get(i).offset(), "blocks() in offset order");
                        lookups.addAndGet(1000);
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            };
            Thread r1 = new Thread(reader, "registry-reader-1"), r2 = new Thread(reader, "registry-reader-2");
            writer.start();
            r1.start();
            r2.start();
            writer.join();
            r1.join();
            r2.join();
            registry.removeAll();

            if (failure.get() != null) throw new AssertionError("concurrent lookup failed", failure.get());
            System.out.printf("registry stress: %d lookups during %d adds/removes%n", lookups.get(), changes.get());
            assertThat(lookups.get()).isGreaterThan(10_000);
            assertThat(changes.get()).isGreaterThan(100);
            assertThat(registry.blocks()).isEmpty();
        }
    }

    private static void check(boolean condition, String what) {
        if (!condition) throw new AssertionError(what);
    }
}
