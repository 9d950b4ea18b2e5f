package io.postcopy.policy;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.uffd.Errno;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import org.junit.jupiter.api.Test;

/** madvise on a real mapping, checked through the "nh"/"hg" VmFlags in /proc/self/smaps. */
class HugePagePolicyTest {
    private static final long LENGTH = 8L << 20;

    @Test
    void hugePagesGoOffAndComeBackWhenConfigured() {
        HugePagePolicy policy = Policies.newHugePagePolicy(true);
        try (Mapping ram = Mapping.anonymous(LENGTH)) {
            assertThat(policy.disableTransparentHugePages(ram.address(), LENGTH)).isEqualTo(PolicyOutcome.CHANGED);
            assertThat(ProcStatus.vmFlags(ram.address()).split(" ")).contains("nh").doesNotContain("hg");
            assertThat(policy.disabledRanges()).isEqualTo(1);

            assertThat(policy.restore(ram.address(), LENGTH)).isEqualTo(PolicyOutcome.CHANGED);
            assertThat(ProcStatus.vmFlags(ram.address()).split(" ")).contains("hg").doesNotContain("nh");
            assertThat(policy.disabledRanges()).isZero();
            assertThat(policy.lastError()).isEmpty();
        }
    }

    @Test
    void withoutRestoreTheRangeKeepsHugePagesOff() {
        HugePagePolicy policy = Policies.newHugePagePolicy(false);
        try (Mapping ram = Mapping.anonymous(LENGTH)) {
            policy.disableTransparentHugePages(ram.address(), LENGTH);
            assertThat(policy.restore(ram.address(), LENGTH)).isEqualTo(PolicyOutcome.UNCHANGED);
            assertThat(ProcStatus.vmFlags(ram.address()).split(" ")).contains("nh");
            assertThat(policy.disabledRanges()).isEqualTo(1);
        }
    }

    @Test
    void aKernelRefusalIsReportedNotThrown() {
        HugePagePolicy policy = Policies.newHugePagePolicy(true);
        try (Mapping ram = Mapping.anonymous(NativeMemory.pageSize())) {
            // An unaligned start: the kernel says EINVAL.
            PolicyOutcome outcome = policy.disableTransparentHugePages(ram.address() + 1, NativeMemory.pageSize());
            assertThat(outcome.ok()).isFalse();
            assertThat(outcome.error().errno()).isEqualTo(Errno.EINVAL);
            assertThat(policy.lastError()).contains(outcome.error());
            assertThat(policy.disabledRanges()).isZero();
        }
    }
}
