package io.postcopy.codec;

/** One discarded byte range, relative to the start of its RAM block. */
public record DiscardRange(long start, long length) {
}
