package io.postcopy.policy;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.policy.internal.MemoryLock;
import io.postcopy.uffd.Errno;
import io.postcopy.uffd.NativeMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Real mlockall/munlockall on the test JVM (root here), checked through /proc/self/status VmLck. */
class MemoryLockPolicyTest {
    @AfterEach
    void neverLeaveTheJvmLocked() {
        NativeMemory.munlockall();
    }

    @Test
    void withLockingConfiguredTheLockIsDroppedForUserfaultAndRestoredAfter() {
        MemoryLockPolicy policy = Policies.newMemoryLockPolicy(true);
        assertThat(policy.lockMemory()).isTrue();
        assertThat(policy.locked()).isFalse();

        assertThat(policy.lockIfConfigured()).isEqualTo(PolicyOutcome.CHANGED);
        assertThat(policy.locked()).isTrue();
        assertThat(ProcStatus.lockedKb()).isPositive();

        assertThat(policy.beforeUserfault()).isEqualTo(PolicyOutcome.CHANGED);
        assertThat(policy.locked()).isFalse();
        assertThat(ProcStatus.lockedKb()).isZero();

        assertThat(policy.afterUserfault()).isEqualTo(PolicyOutcome.CHANGED);
        assertThat(policy.locked()).isTrue();
        assertThat(ProcStatus.lockedKb()).isPositive();

        assertThat(policy.unlock()).isEqualTo(PolicyOutcome.CHANGED);
        assertThat(ProcStatus.lockedKb()).isZero();
        assertThat(policy.unlock()).isEqualTo(PolicyOutcome.UNCHANGED);
        assertThat(policy.lastError()).isEmpty();
    }

    @Test
    void withoutLockingConfiguredNothingIsTouched() {
        MemoryLockPolicy policy = Policies.newMemoryLockPolicy(false);
        assertThat(policy.lockIfConfigured()).isEqualTo(PolicyOutcome.UNCHANGED);
        assertThat(policy.beforeUserfault()).isEqualTo(PolicyOutcome.UNCHANGED);
        assertThat(policy.afterUserfault()).isEqualTo(PolicyOutcome.UNCHANGED);
        assertThat(policy.locked()).isFalse();
        assertThat(ProcStatus.lockedKb()).isZero();
    }

    @Test
    void aFailureToRelockIsReportedNotThrown() {
        // mlockall(0) is EINVAL: a real kernel refusal to stand in for ENOMEM or EPERM.
        MemoryLockPolicy policy = new MemoryLock(true, 0);
        assertThat(policy.beforeUserfault().ok()).isTrue();
        PolicyOutcome outcome = policy.afterUserfault();
        assertThat(outcome.ok()).isFalse();
        assertThat(outcome.changed()).isFalse();
        assertThat(outcome.error().errno()).isEqualTo(Errno.EINVAL);
        assertThat(outcome.error().operation()).isEqualTo("mlockall");
        assertThat(policy.locked()).isFalse();
        assertThat(policy.lastError()).contains(outcome.error());
    }
}
