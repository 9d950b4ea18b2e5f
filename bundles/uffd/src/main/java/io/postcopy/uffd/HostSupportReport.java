package io.postcopy.uffd;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What {@link HostSupport#probe} found: each check with its verdict, reason and fix, and the facts a
 * postcopy destination needs (features, ioctls per backing, page sizes).
 *
 * @param supported      whether postcopy can run here (every mandatory check passed)
 * @param checks         every check, in the order run
 * @param features       the features the kernel offers (empty when no userfaultfd could be opened)
 * @param ioctlsByBacking ioctls of a MISSING registration per backing: "anonymous", "shmem", "hugetlb"
 * @param hostPageSize   the host page size
 * @param hugePageSize   the default huge page size, 0 when none
 * @param targetPageSize the page size the probe was asked about
 */
public record HostSupportReport(boolean supported, List<Check> checks, Set<UffdFeature> features,
                                Map<String, Set<UffdIoctl>> ioctlsByBacking, long hostPageSize,
                                long hugePageSize, long targetPageSize) {

    /** One check: a name, whether it passed, what was seen, and how to fix a failure (null when passed). */
    public record Check(String name, boolean passed, boolean mandatory, String detail, String fix) {}

    /** The failed mandatory checks, one line each ("name: detail (fix)"). */
    public String failures() {
        StringBuilder b = new StringBuilder();
        for (Check c : checks) {
            if (c.mandatory() && !c.passed()) {
                if (b.length() > 0) b.append("; ");
                b.append(c.name()).append(": ").append(c.detail());
                if (c.fix() != null) b.append(" (").append(c.fix()).append(')');
            }
        }
        return b.toString();
    }
}
