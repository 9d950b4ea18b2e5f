package io.postcopy.codec;

/**
 * Decoder settings.
 *
 * @param targetPageSize size of every RAM record's page, and the mask of the record header's flag bits
 * @param hostPageSize   the page size below which MEM_SIZE carries no per-block page size
 * @param postcopyRam    whether the stream was made with postcopy-ram on (then MEM_SIZE carries the page size
 *                       of every block whose page size differs from the host's)
 * @param maxPackageSize cap on a PACKAGED blob (and on a return-path bitmap); nothing larger is ever allocated
 * @param validator      the destination's own blocks, or {@code null} to check against the stream's MEM_SIZE list only
 */
public record DecoderOptions(int targetPageSize, long hostPageSize, boolean postcopyRam, int maxPackageSize,
                             BlockValidator validator) {

    public DecoderOptions {
        if (Integer.bitCount(targetPageSize) != 1 || targetPageSize < 512) {
            throw new IllegalArgumentException("target page size must be a power of two >= 512: " + targetPageSize);
        }
        if (maxPackageSize < 0) {
            throw new IllegalArgumentException("negative package cap");
        }
    }

    public static DecoderOptions defaults() {
        return new DecoderOptions(Wire.DEFAULT_TARGET_PAGE_SIZE, Wire.DEFAULT_TARGET_PAGE_SIZE, true,
                Wire.DEFAULT_MAX_PACKAGED_SIZE, null);
    }

    public DecoderOptions withValidator(BlockValidator v) {
        return new DecoderOptions(targetPageSize, hostPageSize, postcopyRam, maxPackageSize, v);
    }

    public DecoderOptions withMaxPackageSize(int cap) {
        return new DecoderOptions(targetPageSize, hostPageSize, postcopyRam, cap, validator);
    }

    public DecoderOptions withPostcopyRam(boolean on) {
        return new DecoderOptions(targetPageSize, hostPageSize, on, maxPackageSize, validator);
    }
}
