package io.postcopy.policy;

import io.postcopy.uffd.UffdException;
import java.util.Optional;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Whether the process keeps its memory locked ({@code mlockall}), and the seed's handling of it around
 * postcopy: userfaultfd and mlock do not go together, so the lock is dropped before userfaultfd use and
 * restored after cleanup. Configured by PID {@code io.postcopy.policy.mlock}, property {@code lockMemory}.
 */
@ProviderType
public interface MemoryLockPolicy {
    String PID = "io.postcopy.policy.mlock";

    /** The configuration: should memory be locked? */
    boolean lockMemory();

    /** True while this policy holds {@code mlockall(MCL_CURRENT|MCL_FUTURE)}. */
    boolean locked();

    /** Locks all memory when configured to ({@code mlockall(MCL_CURRENT|MCL_FUTURE)}); done at activation. */
    PolicyOutcome lockIfConfigured();

    /** Drops the lock ({@code munlockall}) when locking is configured; the caller decides whether a failure stops postcopy. */
    PolicyOutcome beforeUserfault();

    /** Restores the lock when configured; a failure is reported and logged, never thrown: the VM state is valid. */
    PolicyOutcome afterUserfault();

    /** Drops the lock if this policy holds it (at deactivation). */
    PolicyOutcome unlock();

    /** The last failed kernel call, if any. */
    Optional<UffdException> lastError();
}
