package io.postcopy.fault;

import java.util.List;

/**
 * The pages that never arrived, reported when an incoming migration is cancelled or fails during
 * postcopy. Postcopy cannot be rolled back: the guest's state is split between both sides, so these
 * pages are lost on the destination.
 */
public record MissingPages(List<Range> ranges, long totalBytes) {
    /** A run of missing bytes within a block. */
    public record Range(String idstr, long offset, long length) {}
}
