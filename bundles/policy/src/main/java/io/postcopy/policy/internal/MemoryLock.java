package io.postcopy.policy.internal;

import io.postcopy.policy.MemoryLockPolicy;
import io.postcopy.policy.PolicyOutcome;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.UffdException;
import java.lang.System.Logger.Level;
import java.util.Optional;

/** The memory-lock policy; {@code mlockFlags} is a parameter only so that tests can provoke a failing mlockall. */
public final class MemoryLock implements MemoryLockPolicy {
    private static final System.Logger LOG = System.getLogger(MemoryLock.class.getName());

    private final boolean lockMemory;
    private final int mlockFlags;
    private volatile boolean locked;
    private volatile UffdException lastError;

    public MemoryLock(boolean lockMemory, int mlockFlags) {
        this.lockMemory = lockMemory;
        this.mlockFlags = mlockFlags;
    }

    @Override
    public boolean lockMemory() {
        return lockMemory;
    }

    @Override
    public boolean locked() {
        return locked;
    }

    @Override
    public synchronized PolicyOutcome lockIfConfigured() {
        if (!lockMemory) return PolicyOutcome.UNCHANGED;
        try {
            NativeMemory.mlockall(mlockFlags);
            locked = true;
            return PolicyOutcome.CHANGED;
        } catch (UffdException e) {
            // As the seed's cleanup: "It doesn't feel right to fail at this point, we have a valid VM state."
            lastError = e;
            LOG.log(Level.ERROR, "cannot lock memory: " + e.getMessage());
            return PolicyOutcome.failed(e);
        }
    }

    @Override
    public synchronized PolicyOutcome beforeUserfault() {
        if (!lockMemory) return PolicyOutcome.UNCHANGED;
        return munlockall();
    }

    @Override
    public PolicyOutcome afterUserfault() {
        return lockIfConfigured();
    }

    @Override
    public synchronized PolicyOutcome unlock() {
        return locked ? munlockall() : PolicyOutcome.UNCHANGED;
    }

    private PolicyOutcome munlockall() {
        try {
            NativeMemory.munlockall();
            locked = false;
            return PolicyOutcome.CHANGED;
        } catch (UffdException e) {
            lastError = e;
            LOG.log(Level.ERROR, "cannot unlock memory: " + e.getMessage());
            return PolicyOutcome.failed(e);
        }
    }

    @Override
    public Optional<UffdException> lastError() {
        return Optional.ofNullable(lastError);
    }

    @Override
    public String toString() {
        return "MemoryLockPolicy[lockMemory " + lockMemory + ", locked " + locked + "]";
    }
}
