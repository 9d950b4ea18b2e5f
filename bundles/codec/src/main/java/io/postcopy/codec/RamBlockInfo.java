package io.postcopy.codec;

/**
 * A RAM block as named on the wire (MEM_SIZE list) or as owned by the destination (given to a
 * {@link BlockValidator}).
 *
 * @param index      position in the list it came from (page handlers may index arrays with it)
 * @param idstr      the block's QEMU idstr, e.g. {@code pc.ram}, 1..255 printable ASCII bytes
 * @param usedLength bytes in use, a multiple of the target page size
 * @param pageSize   the block's page size (host page size unless the block is backed by huge pages)
 */
public record RamBlockInfo(int index, String idstr, long usedLength, long pageSize) {
    public RamBlockInfo {
        if (idstr == null || idstr.isEmpty() || idstr.length() > 255) {
            throw new IllegalArgumentException("idstr must have 1..255 characters: " + idstr);
        }
        if (usedLength <= 0 || pageSize <= 0 || Long.bitCount(pageSize) != 1) {
            throw new IllegalArgumentException("bad lengths for " + idstr + ": used " + usedLength + ", page " + pageSize);
        }
    }
}
