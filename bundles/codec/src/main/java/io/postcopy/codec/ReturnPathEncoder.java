package io.postcopy.codec;

import io.postcopy.codec.internal.WireIO;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Writes return-path messages into a caller's buffer. Page requests name their block only when it differs
 * from the previous request's ({@code REQ_PAGES_ID}), as QEMU's destination does; otherwise
 * {@code REQ_PAGES}. Not thread-safe (the fault thread owns it).
 */
public final class ReturnPathEncoder {
    private String lastBlock;

    /** Bytes {@code m} takes on the wire (for RECV_BITMAP including the bitmap and its trailer). */
    public static int encodedLength(ReturnPathMessage m) {
        if (m instanceof ReturnPathMessage.ReqPagesId r) {
            return 4 + 13 + r.block().length();
        } else if (m instanceof ReturnPathMessage.ReqPages) {
            return 4 + 12;
        } else if (m instanceof ReturnPathMessage.RecvBitmap r) {
            return 4 + 1 + r.block().length() + 8 + r.bitmap().remaining() + 8;
        } else if (m instanceof ReturnPathMessage.SwitchoverAck) {
            return 4;
        } else if (m instanceof ReturnPathMessage.PeerId p) {
            return 4 + 1 + p.id().length();
        }
        return 8;
    }

    /** Writes any message as given (a ReqPagesId also becomes the block later REQ_PAGES refer to). */
    public void write(ReturnPathMessage m, ByteBuffer dst) {
        dst.order(ByteOrder.BIG_ENDIAN);
        int len = encodedLength(m) - 4;
        if (m instanceof ReturnPathMessage.RecvBitmap r) {
            len = 1 + r.block().length();
        }
        dst.putShort((short) m.type().number()).putShort((short) len);
        if (m instanceof ReturnPathMessage.Shut s) {
            dst.putInt(s.status());
        } else if (m instanceof ReturnPathMessage.Pong p) {
            dst.putInt(p.value());
        } else if (m instanceof ReturnPathMessage.ReqPagesId r) {
            dst.putLong(r.start()).putInt(r.length());
            WireIO.putName(dst, r.block());
            lastBlock = r.block();
        } else if (m instanceof ReturnPathMessage.ReqPages r) {
            dst.putLong(r.start()).putInt(r.length());
        } else if (m instanceof ReturnPathMessage.RecvBitmap r) {
            WireIO.putName(dst, r.block());
            dst.putLong(r.bitmap().remaining()).put(r.bitmap().duplicate()).putLong(Wire.RECV_BITMAP_ENDING);
        } else if (m instanceof ReturnPathMessage.ResumeAck a) {
            dst.putInt(a.value());
        } else if (m instanceof ReturnPathMessage.PeerId p) {
            WireIO.putName(dst, p.id());
        }
    }

    /**
     * Writes a page request, as REQ_PAGES_ID when {@code block} differs from the last request's block,
     * else as REQ_PAGES. Allocates nothing when the block is unchanged.
     *
     * @return the type written
     */
    public ReturnPathType writePageRequest(String block, long start, int length, ByteBuffer dst) {
        dst.order(ByteOrder.BIG_ENDIAN);
        if (block.equals(lastBlock)) {
            dst.putShort((short) ReturnPathType.REQ_PAGES.number()).putShort((short) 12).putLong(start).putInt(length);
            return ReturnPathType.REQ_PAGES;
        }
        dst.putShort((short) ReturnPathType.REQ_PAGES_ID.number()).putShort((short) (13 + block.length()))
                .putLong(start).putInt(length);
        WireIO.putName(dst, block);
        lastBlock = block;
        return ReturnPathType.REQ_PAGES_ID;
    }

    /** Forget the last block (after a reconnect). */
    public void reset() {
        lastBlock = null;
    }
}
