package io.postcopy.ramblock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.ramblock.RamBlock.Backing;
import io.postcopy.uffd.NativeMemory;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A leased block is never unmapped: removal refuses, or by force asks the holders and waits for them. */
class RamBlockLeaseTest {
    private static final long PAGE = NativeMemory.pageSize();
    private final RamBlockRegistry registry = RamBlocks.newRegistry();

    @AfterEach
    void freeMemory() {
        registry.removeAll();
    }

    @Test
    void removeIsRefusedWhileLeasedAndNamesTheHolders() {
        RamBlock b = registry.create("ram", 4 * PAGE, Backing.ANONYMOUS);
        RamBlockLease one = b.lease("migration out-3", null);
        RamBlockLease two = b.lease("workload on ram", null);
        assertThat(b.holders()).containsExactly("migration out-3", "workload on ram");

        assertThatThrownBy(() -> registry.remove("ram"))
                .isInstanceOfSatisfying(RamBlockInUseException.class, e -> {
                    assertThat(e.idstr()).isEqualTo("ram");
                    assertThat(e.holders()).containsExactly("migration out-3", "workload on ram");
                })
                .hasMessage("RAM block \"ram\" is in use by migration out-3, workload on ram");
        // nothing changed: still registered, mapped and writable
        assertThat(registry.byName("ram")).isSameAs(b);
        assertThat(ProcMaps.isMapped(b.hostAddress())).isTrue();
        NativeMemory.putLong(b.hostAddress(), 42);

        one.close();
        one.close();     // idempotent
        assertThatThrownBy(() -> registry.remove("ram")).hasMessageEndingWith("in use by workload on ram");
        two.close();
        assertThat(registry.remove("ram")).isSameAs(b);
        assertThat(ProcMaps.isMapped(b.hostAddress())).isFalse();
        assertThatThrownBy(() -> b.lease("late", null)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("has been removed");
    }

    @Test
    void forcedRemovalAsksEveryHolderOnceAndUnmapsOnlyAfterTheLastLetGo() throws Exception {
        RamBlock b = registry.create("ram", 4 * PAGE, Backing.MEMFD);
        AtomicInteger asked = new AtomicInteger();
        CountDownLatch letGo = new CountDownLatch(1);
        RamBlockLease quick = b.lease("quick", null);
        RamBlockLease[] slow = new RamBlockLease[1];
        slow[0] = b.lease("slow", () -> {
            asked.incrementAndGet();
            letGo.countDown();
        });
        RamBlockLease gone = b.lease("gone before the removal", null);
        RamBlockLease[] self = new RamBlockLease[1];
        self[0] = b.lease("closes two when asked", () -> {
            quick.close();
            self[0].close();
        });
        // the slow holder's thread keeps touching the memory until it has stopped, then lets go
        java.util.concurrent.atomic.AtomicReference<Throwable> seen = new java.util.concurrent.atomic.AtomicReference<>();
        Thread holder = new Thread(() -> {
            try {
                letGo.await();
                for (int i = 0; i < 1000; i++) NativeMemory.putLong(b.hostAddress() + 8 * (i % 512), i);
                Thread.sleep(100);
                assertThat(ProcMaps.isMapped(b.hostAddress())).isTrue();
                slow[0].close();
            } catch (Throwable t) {
                seen.compareAndSet(null, t);
            }
        });
        holder.start();
        Thread late = new Thread(() -> {
            try {
                letGo.await();
                assertThatThrownBy(() -> b.lease("late", null)).hasMessageContaining("is being removed");
            } catch (Throwable t) {
                seen.compareAndSet(null, t);
            }
        });
        late.start();
        gone.close();
        long t0 = System.nanoTime();
        assertThat(registry.remove("ram", Duration.ofSeconds(10))).isSameAs(b);
        assertThat(System.nanoTime() - t0).isGreaterThan(TimeUnit.MILLISECONDS.toNanos(90));
        holder.join();
        late.join();
        assertThat(seen.get()).isNull();
        assertThat(asked).hasValue(1);
        assertThat(ProcMaps.isMapped(b.hostAddress())).isFalse();
        assertThat(registry.byName("ram")).isNull();
        assertThat(b.holders()).isEmpty();
    }

    @Test
    void aHolderThatDoesNotLetGoInTimeKeepsTheBlock() {
        RamBlock b = registry.create("ram", 4 * PAGE, Backing.ANONYMOUS);
        RamBlockLease stuck = b.lease("migration in-7", () -> { });
        assertThatThrownBy(() -> registry.remove("ram", Duration.ofMillis(200)))
                .isInstanceOf(RamBlockInUseException.class)
                .hasMessage("RAM block \"ram\" stays: still in use after 200 ms by migration in-7");
        assertThat(registry.byName("ram")).isSameAs(b);
        assertThat(ProcMaps.isMapped(b.hostAddress())).isTrue();
        // leases are granted again
        b.lease("next", null).close();
        stuck.close();
        registry.remove("ram");
    }

    @Test
    void removeAllRemovesWhatItCanAndKeepsWhatIsHeld() {
        RamBlock a = registry.create("a", PAGE, Backing.ANONYMOUS);
        RamBlock held = registry.create("held", PAGE, Backing.ANONYMOUS);
        RamBlock c = registry.create("c", PAGE, Backing.ANONYMOUS);
        RamBlockLease willGo = c.lease("goes when asked", null);
        willGo.close();
        RamBlock[] holder = {held};
        assertThat(c.holders()).isEmpty();
        RamBlockLease lease = held.lease("holder", () -> { });
        // removeAll waits REMOVE_ALL_WAIT for a holder: let this one go after a moment instead
        new Thread(() -> {
            try {
                Thread.sleep(300);
            } catch (InterruptedException ignored) {
                // closing anyway
            }
            lease.close();
        }).start();
        registry.removeAll();
        assertThat(registry.blocks()).isEmpty();
        assertThat(ProcMaps.isMapped(a.hostAddress())).isFalse();
        assertThat(ProcMaps.isMapped(holder[0].hostAddress())).isFalse();
    }

    @Test
    void aLeaseNeedsAHolderName() {
        RamBlock b = registry.create("ram", PAGE, Backing.ANONYMOUS);
        assertThatThrownBy(() -> b.lease("", null)).isInstanceOf(IllegalArgumentException.class);
    }
}
