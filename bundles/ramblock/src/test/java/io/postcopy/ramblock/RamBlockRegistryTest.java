package io.postcopy.ramblock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.ramblock.RamBlock.Backing;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class RamBlockRegistryTest {
    private static final long PAGE = NativeMemory.pageSize();
    private final RamBlockRegistry registry = RamBlocks.newRegistry();

    @AfterEach
    void freeMemory() {
        registry.removeAll();
    }

    @Test
    void createdBlocksHaveZeroedWritableMemoryAndOffsetsInCreationOrder() {
        RamBlock ram = registry.create("pc.ram", 64 * PAGE, Backing.ANONYMOUS);
        RamBlock rom = registry.create("pc.rom", 3 * PAGE, 5 * PAGE, Backing.MEMFD);
        RamBlock vga = registry.create("vga.vram", 16 * PAGE, Backing.ANONYMOUS);

        assertThat(registry.blocks()).containsExactly(ram, rom, vga);
        assertThat(ram.offset()).isZero();
        assertThat(rom.offset()).isEqualTo(64 * PAGE);
        assertThat(vga.offset()).isEqualTo(64 * PAGE + 5 * PAGE);
        assertThat(rom.usedLength()).isEqualTo(3 * PAGE);
        assertThat(rom.maxLength()).isEqualTo(5 * PAGE);
        assertThat(rom.pages()).isEqualTo(3);
        assertThat(ram.pageSize()).isEqualTo(PAGE);
        assertThat(ram.fd()).isEqualTo(-1);
        assertThat(rom.fd()).isGreaterThan(2);
        assertThat(rom.backing()).isEqualTo(Backing.MEMFD);

        for (RamBlock b : registry.blocks()) {
            assertThat(b.hostAddress() % b.pageSize()).isZero();
            assertThat(NativeMemory.isZero(b.hostAddress(), b.maxLength())).as(b.idstr()).isTrue();
            NativeMemory.putLong(b.hostAddress() + b.maxLength() - 8, 0x5eedL + b.offset());
        }
        for (RamBlock b : registry.blocks())
            assertThat(NativeMemory.getLong(b.hostAddress() + b.maxLength() - 8)).isEqualTo(0x5eedL + b.offset());
    }

    @Test
    void removeUnmapsOwnedMemoryAndOffsetsStayStable() {
        RamBlock a = registry.create("a", 4 * PAGE, Backing.ANONYMOUS);
        RamBlock b = registry.create("b", 4 * PAGE, Backing.MEMFD);
        assertThat(ProcMaps.isMapped(b.hostAddress())).isTrue();

        assertThat(registry.remove("b")).isSameAs(b);
        assertThat(ProcMaps.isMapped(b.hostAddress())).isFalse();
        assertThat(registry.byName("b")).isNull();
        assertThat(registry.blockOf(b.hostAddress())).isNull();
        assertThatThrownBy(() -> b.discard(0, PAGE)).isInstanceOf(IllegalStateException.class).hasMessageContaining("removed");

        RamBlock c = registry.create("c", 4 * PAGE, Backing.ANONYMOUS);
        assertThat(c.offset()).as("removed blocks leave holes: offsets are never reused").isEqualTo(8 * PAGE);
        assertThat(registry.blocks()).containsExactly(a, c);
    }

    @Test
    void removeRefusesUnknownNames() {
        registry.create("pc.ram", PAGE, Backing.ANONYMOUS);
        assertThatThrownBy(() -> registry.remove("pc.rom"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no RAM block named \"pc.rom\"").hasMessageContaining("pc.ram");
    }

    @Test
    void adoptedMemoryIsRegisteredButNeverUnmapped() {
        try (Mapping external = Mapping.anonymous(8 * PAGE)) {
            NativeMemory.putLong(external.address() + PAGE, 42);
            RamBlock adopted = registry.adopt("ext", external.address(), external.length(), PAGE);
            assertThat(adopted.backing()).isEqualTo(Backing.ADOPTED);
            assertThat(adopted.fd()).isEqualTo(-1);
            assertThat(adopted.hostAddress()).isEqualTo(external.address());
            assertThat(NativeMemory.getLong(adopted.hostAddress() + PAGE)).isEqualTo(42);

            registry.remove("ext");
            assertThat(ProcMaps.isMapped(external.address())).isTrue();
            assertThat(NativeMemory.getLong(external.address() + PAGE)).isEqualTo(42);
        }
    }

    @Test
    void adoptRefusesOverlapsAndMisalignment() {
        try (Mapping external = Mapping.anonymous(8 * PAGE)) {
            long a = external.address();
            registry.adopt("low", a, 4 * PAGE, PAGE);
            assertThatThrownBy(() -> registry.adopt("mid", a + 3 * PAGE, 2 * PAGE, PAGE))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("overlaps block low");
            assertThatThrownBy(() -> registry.adopt("odd", a + 4 * PAGE + 8, PAGE, PAGE))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("aligned");
            assertThatThrownBy(() -> registry.adopt("short", a + 4 * PAGE, PAGE / 2, PAGE))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiples of the page size");
            assertThatThrownBy(() -> registry.adopt("pg", a + 4 * PAGE, PAGE, 3000))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("power of two");
            RamBlock high = registry.adopt("high", a + 4 * PAGE, 4 * PAGE, PAGE);
            assertThat(registry.blockOf(a + 4 * PAGE)).isSameAs(high);
            assertThat(registry.blockOf(a + 4 * PAGE - 1).idstr()).isEqualTo("low");
            registry.removeAll();
        }
    }

    @Test
    void namesAreUniqueAndValidatedAsOnTheWire() {
        registry.create("pc.ram", PAGE, Backing.ANONYMOUS);
        assertThatThrownBy(() -> registry.create("pc.ram", PAGE, Backing.ANONYMOUS))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("already exists");
        assertThatThrownBy(() -> registry.create("", PAGE, Backing.ANONYMOUS))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 bytes");
        assertThatThrownBy(() -> registry.create("a\0b", PAGE, Backing.ANONYMOUS))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("NUL");
        // 85 three-byte characters are 255 bytes: the longest name; one more byte is too long.
        String longest = "€".repeat(85);
        assertThat(registry.create(longest, PAGE, Backing.MEMFD).idstr()).isEqualTo(longest);
        assertThatThrownBy(() -> registry.create(longest + "x", PAGE, Backing.ANONYMOUS))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("256 bytes");
        assertThatThrownBy(() -> registry.create("x", PAGE + 1, Backing.ANONYMOUS))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> registry.create("y", 2 * PAGE, PAGE, Backing.ANONYMOUS))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("used <= max");
        assertThatThrownBy(() -> registry.create("z", PAGE, Backing.ADOPTED))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("adopt");
        assertThat(registry.blocks()).extracting(RamBlock::idstr).containsExactly("pc.ram", longest);
    }

    @Test
    void blockOfFindsEveryAddressInsideAndNothingOutside() {
        List<RamBlock> blocks = new ArrayList<>();
        for (int i = 0; i < 12; i++)
            blocks.add(registry.create("b" + i, (1 + i % 4) * PAGE, (2 + i % 4) * PAGE, i % 3 == 0 ? Backing.MEMFD : Backing.ANONYMOUS));
        for (RamBlock b : blocks) {
            long h = b.hostAddress();
            for (long off = 0; off < b.maxLength(); off += 509) {
                assertThat(registry.blockOf(h + off)).isSameAs(b);
                assertThat(b.offsetOf(h + off)).isEqualTo(off);
            }
            assertThat(registry.blockOf(h + b.maxLength() - 1)).isSameAs(b);
            RamBlock before = registry.blockOf(h - 1), after = registry.blockOf(h + b.maxLength());
            if (before != null) assertThat(before).isNotSameAs(b).matches(x -> x.contains(h - 1));
            if (after != null) assertThat(after).isNotSameAs(b).matches(x -> x.contains(h + b.maxLength()));
            assertThat(registry.byName(b.idstr())).isSameAs(b);
        }
        assertThat(registry.blockOf(0)).isNull();
        assertThat(registry.blockOf(-1)).isNull();
        assertThat(registry.blockOf(Long.MIN_VALUE)).isNull();
        assertThatThrownBy(() -> blocks.get(0).offsetOf(blocks.get(0).hostAddress() - 1))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void listenersSeeAddsAndRemovesAndLateListenersSeeExistingBlocks() {
        List<String> events = new ArrayList<>();
        RamBlockListener recorder = new RamBlockListener() {
            @Override public void blockAdded(RamBlock b) { events.add("+" + b.idstr()); }
            @Override public void blockRemoved(RamBlock b) {
                // Listeners run before the memory goes: a uffd unregister would still work here.
                assertThat(ProcMaps.isMapped(b.hostAddress())).isTrue();
                events.add("-" + b.idstr());
            }
        };
        RamBlockListener broken = new RamBlockListener() {
            @Override public void blockAdded(RamBlock b) { throw new IllegalStateException("broken listener"); }
            @Override public void blockRemoved(RamBlock b) { throw new IllegalStateException("broken listener"); }
        };
        registry.create("a", PAGE, Backing.ANONYMOUS);
        registry.create("b", PAGE, Backing.MEMFD);
        registry.addListener(broken);
        registry.addListener(recorder);
        registry.create("c", PAGE, Backing.ANONYMOUS);
        registry.remove("a");
        registry.removeListener(recorder);
        registry.remove("b");
        assertThat(events).containsExactly("+a", "+b", "+c", "-a");
        assertThat(registry.blocks()).extracting(RamBlock::idstr).containsExactly("c");
    }

    @Test
    void blocksIsAnUnmodifiableSnapshot() {
        registry.create("a", PAGE, Backing.ANONYMOUS);
        List<RamBlock> before = registry.blocks();
        registry.create("b", PAGE, Backing.ANONYMOUS);
        assertThat(before).extracting(RamBlock::idstr).containsExactly("a");
        assertThatThrownBy(() -> before.set(0, null)).isInstanceOf(UnsupportedOperationException.class);
    }
}
