package io.postcopy.codec;

import java.nio.ByteBuffer;

/** A return-path message (destination to source): immutable values, one per {@link ReturnPathType}. */
public sealed interface ReturnPathMessage {

    ReturnPathType type();

    record Shut(int status) implements ReturnPathMessage {
        public ReturnPathType type() { return ReturnPathType.SHUT; }
    }

    record Pong(int value) implements ReturnPathMessage {
        public ReturnPathType type() { return ReturnPathType.PONG; }
    }

    /** A page request naming its block; {@code length} is the block's page size. */
    record ReqPagesId(String block, long start, int length) implements ReturnPathMessage {
        public ReqPagesId {
            if (block == null || block.isEmpty() || block.length() > 255) {
                throw new IllegalArgumentException("block name must have 1..255 characters");
            }
        }
        public ReturnPathType type() { return ReturnPathType.REQ_PAGES_ID; }
    }

    /** A page request in the block of the last {@link ReqPagesId}. */
    record ReqPages(long start, int length) implements ReturnPathMessage {
        public ReturnPathType type() { return ReturnPathType.REQ_PAGES; }
    }

    /**
     * The received-pages bitmap of one block (postcopy recovery): the message names the block, and the
     * bitmap (little-endian 64-bit words, as QEMU writes it) follows outside the message length.
     *
     * @param bitmap read-only; compared by content
     */
    record RecvBitmap(String block, ByteBuffer bitmap) implements ReturnPathMessage {
        public RecvBitmap {
            if (block == null || block.isEmpty() || block.length() > 255) {
                throw new IllegalArgumentException("block name must have 1..255 characters");
            }
            if (bitmap.remaining() % 8 != 0) {
                throw new IllegalArgumentException("bitmap size must be a multiple of 8");
            }
            bitmap = bitmap.asReadOnlyBuffer();
        }
        public ReturnPathType type() { return ReturnPathType.RECV_BITMAP; }
    }

    record ResumeAck(int value) implements ReturnPathMessage {
        public ReturnPathType type() { return ReturnPathType.RESUME_ACK; }
    }

    record SwitchoverAck() implements ReturnPathMessage {
        public ReturnPathType type() { return ReturnPathType.SWITCHOVER_ACK; }
    }

    /** Our destination's migration id, the answer to our source's PEER_ID command. */
    record PeerId(String id) implements ReturnPathMessage {
        public PeerId {
            if (id == null || id.isEmpty() || id.length() > Wire.PEER_ID_MAX) {
                throw new IllegalArgumentException("a peer id has 1.." + Wire.PEER_ID_MAX + " characters");
            }
        }
        public ReturnPathType type() { return ReturnPathType.PEER_ID; }
    }
}
