package io.postcopy.fault;

import java.io.IOException;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * Where the fault thread sends page requests: the return path to the source (REQ_PAGES_ID / REQ_PAGES).
 * Called from the fault thread only, one request at a time.
 */
@ConsumerType
public interface PageRequester {
    /**
     * Asks the source for {@code length} bytes at {@code offset} of a block.
     *
     * @param blockIdstr the block's name when it differs from the previous request's block (REQ_PAGES_ID),
     *                   null when it is the same block (REQ_PAGES)
     * @param offset     byte offset within the block, aligned to the block's page size
     * @param length     the block's page size
     * @throws IOException when the return path is broken: the incoming migration fails with it
     */
    void requestPage(String blockIdstr, long offset, long length) throws IOException;

    /** Told once when the incoming migration fails (e.g. a fault outside every block, or a request that threw). */
    default void failed(Throwable cause) {}
}
