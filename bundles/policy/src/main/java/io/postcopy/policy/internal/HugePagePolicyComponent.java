package io.postcopy.policy.internal;

import io.postcopy.policy.HugePagePolicy;
import io.postcopy.policy.PolicyOutcome;
import io.postcopy.uffd.UffdException;
import java.util.Optional;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.metatype.annotations.Designate;

/** The transparent-hugepage policy as a service. */
@Component(service = HugePagePolicy.class, configurationPid = HugePagePolicy.PID, immediate = true)
@Designate(ocd = HugePageConfig.class)
public class HugePagePolicyComponent implements HugePagePolicy {
    private volatile TransparentHugePages policy;

    @Activate
    void activate(HugePageConfig config) {
        policy = new TransparentHugePages(config.restoreHugePages());
    }

    @Override public boolean restoreHugePages() { return policy.restoreHugePages(); }
    @Override public PolicyOutcome disableTransparentHugePages(long address, long length) {
        return policy.disableTransparentHugePages(address, length);
    }
    @Override public PolicyOutcome restore(long address, long length) { return policy.restore(address, length); }
    @Override public long disabledRanges() { return policy.disabledRanges(); }
    @Override public Optional<UffdException> lastError() { return policy.lastError(); }
}
