package io.postcopy.workload;

/**
 * The outcome of {@link Workload#verify}: every page is either all zero (never written), a generation-0 image
 * ({@link Workload#fill}) or a written image of a later generation; anything else is a mismatch.
 *
 * @param pages pages examined
 * @param zeroPages pages that are entirely zero
 * @param filledPages consistent images of generation 0
 * @param writtenPages consistent images of a generation above 0
 * @param mismatched pages that are none of these
 * @param firstMismatch the lowest mismatched page index, -1 when none
 */
public record VerifyResult(long pages, long zeroPages, long filledPages, long writtenPages, long mismatched,
        long firstMismatch) {
    public boolean ok() {
        return mismatched == 0;
    }
}
