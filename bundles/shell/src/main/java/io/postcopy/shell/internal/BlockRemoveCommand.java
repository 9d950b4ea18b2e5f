package io.postcopy.shell.internal;

import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationService;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockInUseException;
import io.postcopy.shell.internal.completers.BlockNameCompleter;
import io.postcopy.workload.WorkloadService;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;

/**
 * Removes a RAM block and unmaps its memory. A block that a migration uses is refused, naming the migration;
 * {@code --force} cancels it, waits until it has let go of the memory, then removes. The block's own workload
 * (the guest stand-in) is stopped first either way.
 */
@Command(scope = "postcopy", name = "block-remove",
        description = "Removes a RAM block and frees its memory; refused while a migration uses it, unless --force")
@Service
public class BlockRemoveCommand extends PostcopyCommandSupport {

    @Argument(index = 0, name = "name", required = true, description = "The block to remove")
    @Completion(BlockNameCompleter.class)
    String name;

    @Option(name = "--force", aliases = "-f",
            description = "Cancel every migration that uses the block (and stop what else reads it), wait until they "
                    + "have let go of its memory, then remove it")
    boolean force;

    @Option(name = "--wait", description = "With --force: how long to wait for them, in seconds (default 30)")
    int waitSeconds = 30;

    @Reference(optional = true)
    WorkloadService workloads;

    @Reference(optional = true)
    MigrationService migrations;

    @Override
    protected Object doExecute() {
        RamBlock b = block(name);
        List<String> holders = b.holders();
        String before = describe(holders);
        String workload = "workload on " + name;
        boolean stopped = false;
        if (force) {
            if (waitSeconds <= 0) throw new IllegalArgumentException("--wait must be a positive number of seconds");
            try {
                registry.remove(name, Duration.ofSeconds(waitSeconds));
            } catch (RamBlockInUseException e) {
                throw new IllegalStateException("block \"" + name + "\" stays: still in use after " + waitSeconds
                        + " s by " + describe(e.holders()));
            }
        } else {
            List<String> others = new ArrayList<>(holders);
            others.remove(workload);
            if (!others.isEmpty()) throw refusal(others);
            // only its own workload: stop it, as before leases existed; anything that came meanwhile is refused
            stopped = holders.contains(workload) && workloads != null && workloads.stop(name);
            try {
                registry.remove(name);
            } catch (RamBlockInUseException e) {
                throw refusal(e.holders());
            }
        }
        if (force) awaitMigrations(holders);    // they have let go; their final state follows at once
        out().println("Removed block " + name + " (" + Sizes.exact(b.usedLength()) + ")"
                + (force && !holders.isEmpty() ? "; first let go: " + before
                        : stopped ? "; its workload was stopped first" : ""));
        return null;
    }

    private void awaitMigrations(List<String> holders) {
        if (migrations == null) return;
        for (String h : holders) {
            if (!h.startsWith("migration ")) continue;
            Optional<Migration> m = migrations.get(h.substring("migration ".length()));
            if (m.isEmpty()) continue;
            try {
                m.get().awaitCompletion(Duration.ofSeconds(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private IllegalStateException refusal(List<String> holders) {
        return new IllegalStateException("block \"" + name + "\" is in use by " + describe(holders)
                + "; end " + (holders.size() == 1 ? "it" : "them") + " first (postcopy:cancel), or remove with --force,"
                + " which cancels " + (holders.size() == 1 ? "it" : "them"));
    }

    /** The holders, a migration with its state: "migration out-3 (POSTCOPY)". */
    private String describe(List<String> holders) {
        List<String> out = new ArrayList<>();
        for (String h : holders) {
            Optional<Migration> m = migrations == null || !h.startsWith("migration ") ? Optional.empty()
                    : migrations.get(h.substring("migration ".length()));
            out.add(m.map(x -> h + " (" + x.state() + ")").orElse(h));
        }
        return String.join(", ", out);
    }
}
