package io.postcopy.policy;

import io.postcopy.uffd.UffdException;
import java.util.Optional;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Transparent huge pages around discards, as the seed's {@code nhp_range}/{@code cleanup_range}: a discard of
 * one small page inside a transparent huge page must really free it, so THP goes off on a range before its
 * discards, and back on after cleanup. Configured by PID {@code io.postcopy.policy.thp}, property
 * {@code restoreHugePages}. Failures are reported, not thrown, as the seed ignores them.
 */
@ProviderType
public interface HugePagePolicy {
    String PID = "io.postcopy.policy.thp";

    /** The configuration: turn THP back on ({@code MADV_HUGEPAGE}) after cleanup? */
    boolean restoreHugePages();

    /** {@code madvise(MADV_NOHUGEPAGE)} on the range. */
    PolicyOutcome disableTransparentHugePages(long address, long length);

    /** {@code madvise(MADV_HUGEPAGE)} on the range when configured; otherwise THP stays off there. */
    PolicyOutcome restore(long address, long length);

    /** Ranges turned off and not yet restored, as counted by successful calls. */
    long disabledRanges();

    /** The last failed kernel call, if any. */
    Optional<UffdException> lastError();
}
