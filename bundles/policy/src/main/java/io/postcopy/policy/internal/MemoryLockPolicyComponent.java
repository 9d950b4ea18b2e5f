package io.postcopy.policy.internal;

import io.postcopy.policy.MemoryLockPolicy;
import io.postcopy.policy.PolicyOutcome;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.UffdException;
import java.util.Optional;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.metatype.annotations.Designate;

/** The memory-lock policy as a service; a new configuration re-activates it (unlock, then lock as configured). */
// Immediate: the configured lock is taken at start, not when a first user happens to come.
@Component(service = MemoryLockPolicy.class, configurationPid = MemoryLockPolicy.PID, immediate = true)
@Designate(ocd = MemoryLockConfig.class)
public class MemoryLockPolicyComponent implements MemoryLockPolicy {
    private volatile MemoryLock policy;

    @Activate
    void activate(MemoryLockConfig config) {
        policy = new MemoryLock(config.lockMemory(), NativeMemory.MCL_CURRENT | NativeMemory.MCL_FUTURE);
        policy.lockIfConfigured();
    }

    @Deactivate
    void deactivate() {
        policy.unlock();
    }

    @Override public boolean lockMemory() { return policy.lockMemory(); }
    @Override public boolean locked() { return policy.locked(); }
    @Override public PolicyOutcome lockIfConfigured() { return policy.lockIfConfigured(); }
    @Override public PolicyOutcome beforeUserfault() { return policy.beforeUserfault(); }
    @Override public PolicyOutcome afterUserfault() { return policy.afterUserfault(); }
    @Override public PolicyOutcome unlock() { return policy.unlock(); }
    @Override public Optional<UffdException> lastError() { return policy.lastError(); }
}
