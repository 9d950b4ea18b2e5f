package io.postcopy.ramblock.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockListener;
import io.postcopy.uffd.NativeMemory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The component as DS drives it: bind the whiteboard listeners, serve, deactivate. */
class RamBlockRegistryComponentTest {
    @Test
    void whiteboardListenersAreToldAndDeactivationFreesEveryBlock() {
        List<String> events = new ArrayList<>();
        RamBlockListener listener = new RamBlockListener() {
            @Override public void blockAdded(RamBlock b) { events.add("+" + b.idstr()); }
            @Override public void blockRemoved(RamBlock b) { events.add("-" + b.idstr()); }
        };
        RamBlockRegistryComponent component = new RamBlockRegistryComponent();
        component.bindListener(listener);
        RamBlock ram = component.create("pc.ram", 4 * NativeMemory.pageSize(), RamBlock.Backing.ANONYMOUS);
        RamBlock rom = component.create("pc.rom", NativeMemory.pageSize(), RamBlock.Backing.MEMFD);
        assertThat(component.blockOf(rom.hostAddress())).isSameAs(rom);

        component.deactivate();
        component.unbindListener(listener);

        assertThat(events).containsExactly("+pc.ram", "+pc.rom", "-pc.rom", "-pc.ram");
        assertThat(component.blocks()).isEmpty();
        assertThat(component.blockOf(ram.hostAddress())).isNull();
    }
}
