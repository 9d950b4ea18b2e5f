package io.postcopy.workload;

/**
 * Two per-page digests side by side ({@link PageDigest#compare}). A page present in only one of them counts
 * as mismatched.
 *
 * @param pages pages compared (the longer digest's page count)
 * @param mismatched pages whose digests differ or that only one side has
 * @param firstMismatch the lowest mismatched page, -1 when none
 */
public record DigestComparison(long pages, long mismatched, long firstMismatch) {
    public boolean equal() {
        return mismatched == 0;
    }
}
