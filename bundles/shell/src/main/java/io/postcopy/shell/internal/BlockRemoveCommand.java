package io.postcopy.shell.internal;

import io.postcopy.fault.FaultService;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.shell.internal.completers.BlockNameCompleter;
import io.postcopy.workload.WorkloadService;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/** Removes a RAM block and unmaps its memory; refused while a live migration holds it. */
@Command(scope = "postcopy", name = "block-remove",
        description = "Removes a RAM block and frees its memory (refused while a live migration holds it)")
@Service
public class BlockRemoveCommand extends PostcopyCommandSupport {

    @Argument(index = 0, name = "name", required = true, description = "The block to remove")
    @Completion(BlockNameCompleter.class)
    String name;

    @Reference(optional = true)
    FaultService faultService;

    @Reference(optional = true)
    WorkloadService workloads;

    @Override
    protected Object doExecute() {
        RamBlock b = block(name);
        if (faultService != null) {
            for (IncomingPostcopy in : faultService.incoming()) {
                for (RamBlock held : in.blocks()) {
                    if (held.idstr().equals(b.idstr()))
                        throw new IllegalStateException("block \"" + name + "\" is held by migration " + in.id()
                                + " (" + in.state() + "); end the migration first");
                }
            }
        }
        // A workload on the block would touch unmapped memory: stop it first (the service says it must be).
        boolean stopped = workloads != null && workloads.stop(name);
        registry.remove(name);
        out().println("Removed block " + name + " (" + Sizes.exact(b.usedLength()) + ")"
                + (stopped ? "; its workload was stopped first" : ""));
        return null;
    }
}
