package io.postcopy.codec;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Receives what a {@link StreamDecoder} finds, in stream order. Every method has an empty default.
 *
 * <p>Page path: {@link #onPage} hands out the receive buffer itself and the absolute position of the
 * page's first byte; the page occupies {@code [position, position + pageSize)}. The bytes belong to the
 * decoder again as soon as the method returns: copy or place them before returning, and do not move the
 * buffer's position or limit (the decoder restores them anyway). No object is allocated per page.
 */
public interface StreamHandler {

    default void onHeader(int version) throws IOException {
    }

    default void onConfiguration(String machineName) throws IOException {
    }

    default void onSectionStart(SectionHeader header) throws IOException {
    }

    /** The footer of a section has been read. */
    default void onSectionEnd(SectionHeader header) throws IOException {
    }

    /** The MEM_SIZE block list of the RAM setup section, already checked (and validated, if a validator is set). */
    default void onRamBlockList(List<RamBlockInfo> blocks) throws IOException {
    }

    /**
     * @param block    the block, as listed by MEM_SIZE (same instance every time)
     * @param offset   byte offset of the page in the block
     * @param src      the receive buffer
     * @param position absolute position of the page in {@code src}
     * @param length   the target page size
     */
    default void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) throws IOException {
    }

    /** A page whose every byte is {@code fill} (QEMU always sends 0). */
    default void onZero(RamBlockInfo block, long offset, int fill, int length) throws IOException {
    }

    /** End of a RAM section body (EOS). */
    default void onRamEos() throws IOException {
    }

    /** A top-level command, range-checked. For PACKAGED, {@link #onPackage} follows once the blob is in. */
    default void onCommand(Command command) throws IOException {
    }

    default void onPackage(PackageContents contents) throws IOException {
    }

    default void onEof() throws IOException {
    }
}
