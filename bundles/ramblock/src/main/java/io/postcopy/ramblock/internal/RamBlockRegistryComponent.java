package io.postcopy.ramblock.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockListener;
import io.postcopy.ramblock.RamBlockRegistry;
import java.util.List;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/**
 * The registry as a service, with a whiteboard of {@link RamBlockListener}s. Deactivation removes every
 * block and so unmaps the memory the service allocated.
 */
// Immediate: a delayed component would be disposed when its last user lets go, unmapping every block.
@Component(service = RamBlockRegistry.class, immediate = true)
public class RamBlockRegistryComponent implements RamBlockRegistry {
    private final RamList ramList = new RamList();

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC)
    void bindListener(RamBlockListener listener) {
        ramList.addListener(listener);
    }

    void unbindListener(RamBlockListener listener) {
        ramList.removeListener(listener);
    }

    @Deactivate
    void deactivate() {
        ramList.removeAll();
    }

    @Override
    public RamBlock create(String idstr, long usedLength, long maxLength, RamBlock.Backing backing) {
        return ramList.create(idstr, usedLength, maxLength, backing);
    }

    @Override
    public RamBlock adopt(String idstr, long hostAddress, long length, long pageSize) {
        return ramList.adopt(idstr, hostAddress, length, pageSize);
    }

    @Override
    public RamBlock remove(String idstr) {
        return ramList.remove(idstr);
    }

    @Override
    public RamBlock remove(String idstr, java.time.Duration wait) {
        return ramList.remove(idstr, wait);
    }

    @Override
    public void removeAll() {
        ramList.removeAll();
    }

    @Override
    public List<RamBlock> blocks() {
        return ramList.blocks();
    }

    @Override
    public RamBlock byName(String idstr) {
        return ramList.byName(idstr);
    }

    @Override
    public RamBlock blockOf(long hostAddress) {
        return ramList.blockOf(hostAddress);
    }

    @Override
    public void addListener(RamBlockListener listener) {
        ramList.addListener(listener);
    }

    @Override
    public void removeListener(RamBlockListener listener) {
        ramList.removeListener(listener);
    }
}
