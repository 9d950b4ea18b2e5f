package io.postcopy.workload.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockListener;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.workload.VerifyResult;
import io.postcopy.workload.Workload;
import io.postcopy.workload.WorkloadOptions;
import io.postcopy.workload.WorkloadService;
import io.postcopy.workload.Workloads;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;

/**
 * Workloads by block name. A workload leases its block, so the block cannot go while it runs (a forced removal
 * stops it first); the registry listener only forgets the workloads of removed blocks.
 */
// Immediate: a delayed component would be disposed when its last user lets go, stopping every workload.
@Component(service = WorkloadService.class, immediate = true)
public class WorkloadServiceComponent implements WorkloadService, RamBlockListener {
    private final RamBlockRegistry registry;
    private final Map<String, Workload> workloads = new HashMap<>(); // guarded by this

    @Activate
    public WorkloadServiceComponent(@Reference RamBlockRegistry registry) {
        this.registry = registry;
        registry.addListener(this);
    }

    @Deactivate
    public void deactivate() {
        registry.removeListener(this);
        List<Workload> all;
        synchronized (this) {
            all = new ArrayList<>(workloads.values());
            workloads.clear();
        }
        all.forEach(Workload::stop);
    }

    @Override
    public synchronized Workload start(String blockName, WorkloadOptions options) {
        RamBlock block = registry.byName(blockName);
        if (block == null) throw new IllegalArgumentException("no RAM block named \"" + blockName + "\"");
        Workload old = workloads.get(blockName);
        if (old != null && old.isRunning())
            throw new IllegalStateException("a workload already runs on block \"" + blockName + "\": " + old);
        Workload w = Workloads.start(block, options);
        workloads.put(blockName, w);
        return w;
    }

    @Override
    public boolean stop(String blockName) {
        Workload w;
        synchronized (this) {
            w = workloads.remove(blockName);
        }
        if (w == null) return false;
        w.stop();
        return true;
    }

    @Override
    public synchronized Workload get(String blockName) {
        return workloads.get(blockName);
    }

    @Override
    public synchronized Map<String, Workload> list() {
        return Collections.unmodifiableMap(new TreeMap<>(workloads));
    }

    @Override
    public VerifyResult verify(String blockName) {
        RamBlock block = registry.byName(blockName);
        if (block == null) throw new IllegalArgumentException("no RAM block named \"" + blockName + "\"");
        Workload w = get(blockName);
        boolean pausedHere = w != null && w.isRunning() && !w.isPaused();
        if (pausedHere) w.pause();
        try {
            return Workload.verify(block);
        } finally {
            if (pausedHere) w.resume();
        }
    }

    @Override
    public void blockAdded(RamBlock block) {
        // nothing to do: workloads start on request
    }

    @Override
    public synchronized void blockRemoved(RamBlock block) {
        Workload w = workloads.get(block.idstr());
        if (w != null && w.block() == block) workloads.remove(block.idstr());   // it has ended: its lease is gone
    }
}
