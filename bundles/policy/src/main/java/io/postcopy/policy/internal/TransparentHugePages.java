package io.postcopy.policy.internal;

import io.postcopy.policy.HugePagePolicy;
import io.postcopy.policy.PolicyOutcome;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.UffdException;
import java.lang.System.Logger.Level;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/** The transparent-hugepage policy. */
public final class TransparentHugePages implements HugePagePolicy {
    private static final System.Logger LOG = System.getLogger(TransparentHugePages.class.getName());

    private final boolean restoreHugePages;
    private final AtomicLong disabled = new AtomicLong();
    private volatile UffdException lastError;

    public TransparentHugePages(boolean restoreHugePages) {
        this.restoreHugePages = restoreHugePages;
    }

    @Override
    public boolean restoreHugePages() {
        return restoreHugePages;
    }

    @Override
    public PolicyOutcome disableTransparentHugePages(long address, long length) {
        PolicyOutcome o = madvise(address, length, NativeMemory.MADV_NOHUGEPAGE);
        if (o.changed()) disabled.incrementAndGet();
        return o;
    }

    @Override
    public PolicyOutcome restore(long address, long length) {
        if (!restoreHugePages) return PolicyOutcome.UNCHANGED;
        PolicyOutcome o = madvise(address, length, NativeMemory.MADV_HUGEPAGE);
        // Floor at zero: a restore of a range this policy never turned off is allowed (cleanup after a failed start).
        if (o.changed()) disabled.getAndUpdate(n -> n > 0 ? n - 1 : 0);
        return o;
    }

    private PolicyOutcome madvise(long address, long length, int advice) {
        try {
            NativeMemory.madvise(address, length, advice);
            return PolicyOutcome.CHANGED;
        } catch (UffdException e) {
            lastError = e;
            LOG.log(Level.WARNING, "transparent huge pages: " + e.getMessage());
            return PolicyOutcome.failed(e);
        }
    }

    @Override
    public long disabledRanges() {
        return disabled.get();
    }

    @Override
    public Optional<UffdException> lastError() {
        return Optional.ofNullable(lastError);
    }

    @Override
    public String toString() {
        return "HugePagePolicy[restoreHugePages " + restoreHugePages + ", " + disabled.get() + " ranges off]";
    }
}
