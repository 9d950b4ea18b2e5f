package io.postcopy.codec;

import io.postcopy.codec.CodecException.Kind;
import io.postcopy.codec.internal.WireIO;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ReadableByteChannel;

/**
 * Strict, incremental decoder of the return path (destination to source): be16 type, be16 length,
 * payload, each length checked against {@link ReturnPathType} first. A REQ_PAGES must follow a
 * REQ_PAGES_ID (it reuses that block); with a {@link BlockValidator}, every request must lie inside its
 * block and ask for exactly one page of it. A RECV_BITMAP message is followed, outside its length, by
 * be64 size, the bitmap and be64 {@link Wire#RECV_BITMAP_ENDING}; the bitmap is capped like a package.
 * Not thread-safe.
 */
public final class ReturnPathDecoder {
    private final ReturnPathHandler handler;
    private final BlockValidator validator;
    private final int maxBitmap;
    private long consumed;
    private String lastBlock;
    private boolean shut;

    private String bitmapBlock;
    private long bitmapOffset;
    private ByteBuffer bitmap;
    private long bitmapSize = -1;

    public ReturnPathDecoder(ReturnPathHandler handler) {
        this(handler, null, Wire.DEFAULT_MAX_PACKAGED_SIZE);
    }

    /**
     * @param validator the source's blocks, or {@code null}
     * @param maxBitmap cap on a received-pages bitmap
     */
    public ReturnPathDecoder(ReturnPathHandler handler, BlockValidator validator, int maxBitmap) {
        this.handler = handler;
        this.validator = validator;
        this.maxBitmap = maxBitmap;
    }

    public long offset() {
        return consumed;
    }

    /** Whether SHUT has been decoded (nothing may follow it). */
    public boolean shut() {
        return shut;
    }

    /** Decodes every whole message in {@code in}; leaves a split message's bytes in place. */
    public void decode(ByteBuffer in) throws IOException {
        in.order(ByteOrder.BIG_ENDIAN);
        long base = consumed - in.position();
        try {
            while (true) {
                int end = step(in, in.position(), in.limit(), base);
                if (end < 0) {
                    break;
                }
                in.position(end);
                consumed = base + end;
            }
        } finally {
            consumed = base + in.position();
        }
    }

    /** Reads the channel to its end; a message cut by the end raises TRUNCATED. */
    public void decode(ReadableByteChannel ch) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
        while (true) {
            int n = ch.read(buf);
            buf.flip();
            decode(buf);
            boolean leftover = buf.hasRemaining();
            buf.compact();
            if (n < 0) {
                if (leftover || bitmapBlock != null) {
                    throw new CodecException(Kind.TRUNCATED, consumed, "return path", "end of input inside a message",
                            "whole messages");
                }
                return;
            }
        }
    }

    private int step(ByteBuffer b, int p, int lim, long base) throws IOException {
        long off = base + p;
        int avail = lim - p;
        if (bitmapBlock != null) {
            return bitmapBytes(b, p, avail, off);
        }
        if (avail < 4) {
            return -1;
        }
        if (shut) {
            throw new CodecException(Kind.MALFORMED, off, "return path", "message after SHUT", "nothing");
        }
        int number = WireIO.u16(b, p);
        ReturnPathType t = ReturnPathType.of(number);
        if (t == null) {
            throw new CodecException(Kind.MALFORMED, off, "return-path message type", number, "1..7");
        }
        int len = WireIO.u16(b, p + 2);
        if (!t.acceptsLength(len)) {
            throw new CodecException(Kind.MALFORMED, off + 2, "return-path message length", len, t.expectedLength());
        }
        if (avail < 4 + len) {
            return -1;
        }
        int q = p + 4;
        long poff = off + 4;
        ReturnPathMessage m;
        switch (t) {
            case SHUT:
                m = new ReturnPathMessage.Shut(b.getInt(q));
                shut = true;
                break;
            case PONG:
                m = new ReturnPathMessage.Pong(b.getInt(q));
                break;
            case REQ_PAGES_ID: {
                int nameLen = WireIO.u8(b, q + 12);
                if (13 + nameLen != len) {
                    throw new CodecException(Kind.MALFORMED, poff + 12, "REQ_PAGES_ID name length", nameLen,
                            (len - 13) + " (message length - 13)");
                }
                String name = WireIO.name(b, q + 13, nameLen, poff + 12, "REQ_PAGES_ID block");
                long start = b.getLong(q);
                int length = b.getInt(q + 8);
                checkRequest(poff, name, start, length);
                lastBlock = name;
                m = new ReturnPathMessage.ReqPagesId(name, start, length);
                break;
            }
            case REQ_PAGES: {
                if (lastBlock == null) {
                    throw new CodecException(Kind.MALFORMED, off, "REQ_PAGES", "no block yet", "a REQ_PAGES_ID first");
                }
                long start = b.getLong(q);
                int length = b.getInt(q + 8);
                checkRequest(poff, lastBlock, start, length);
                m = new ReturnPathMessage.ReqPages(start, length);
                break;
            }
            case RECV_BITMAP: {
                int nameLen = WireIO.u8(b, q);
                if (1 + nameLen != len) {
                    throw new CodecException(Kind.MALFORMED, poff, "RECV_BITMAP name length", nameLen,
                            (len - 1) + " (message length - 1)");
                }
                bitmapBlock = WireIO.name(b, q + 1, nameLen, poff, "RECV_BITMAP block");
                if (validator != null && validator.block(bitmapBlock) == null) {
                    throw new CodecException(Kind.OUT_OF_BLOCK, poff, "RECV_BITMAP block", bitmapBlock, "a known block");
                }
                bitmapOffset = off;
                bitmapSize = -1;
                return q + len;
            }
            case RESUME_ACK: {
                int v = b.getInt(q);
                if (v != Wire.RESUME_ACK_VALUE) {
                    throw new CodecException(Kind.MALFORMED, poff, "RESUME_ACK value", v, "1");
                }
                m = new ReturnPathMessage.ResumeAck(v);
                break;
            }
            case SWITCHOVER_ACK:
                m = new ReturnPathMessage.SwitchoverAck();
                break;
            case PEER_ID: {
                int idLen = WireIO.u8(b, q);
                if (1 + idLen != len) {
                    throw new CodecException(Kind.MALFORMED, poff, "PEER_ID length", idLen, (len - 1) + " (message length - 1)");
                }
                m = new ReturnPathMessage.PeerId(WireIO.name(b, q + 1, idLen, poff, "PEER_ID"));
                break;
            }
            default:
                throw new AssertionError(t);
        }
        handler.onMessage(m, off);
        return q + len;
    }

    private void checkRequest(long off, String name, long start, int length) throws CodecException {
        if (validator != null) {
            validator.checkRequest(off, name, start, length & 0xffffffffL);
        } else if (length <= 0 || start < 0 || start % Wire.DEFAULT_TARGET_PAGE_SIZE != 0
                || length % Wire.DEFAULT_TARGET_PAGE_SIZE != 0) {
            throw new CodecException(Kind.OUT_OF_BLOCK, off, "page request", WireIO.hex(start) + "+" + length,
                    "start and length page aligned, length > 0");
        }
    }

    private long expectedBitmapSize(String name) {
        RamBlockInfo b = validator == null ? null : validator.block(name);
        if (b == null) {
            return -1;
        }
        long bits = b.usedLength() / validator.targetPageSize();
        long bytes = (bits + 7) / 8;
        return (bytes + 7) / 8 * 8;
    }

    private int bitmapBytes(ByteBuffer b, int p, int avail, long off) throws IOException {
        if (bitmapSize < 0) {
            if (avail < 8) {
                return -1;
            }
            long size = b.getLong(p);
            long expected = expectedBitmapSize(bitmapBlock);
            if (expected >= 0 ? size != expected : size < 0 || size % 8 != 0 || size > maxBitmap) {
                throw new CodecException(expected >= 0 ? Kind.OUT_OF_BLOCK : Kind.LIMIT, off, "RECV_BITMAP size", size,
                        expected >= 0 ? String.valueOf(expected) : "a multiple of 8 <= " + maxBitmap);
            }
            bitmapSize = size;
            bitmap = ByteBuffer.allocate((int) Math.min(size, 64 * 1024));
            return p + 8;
        }
        if (bitmap.position() < bitmapSize) {
            if (avail == 0) {
                return -1;
            }
            int take = (int) Math.min(avail, bitmapSize - bitmap.position());
            if (bitmap.remaining() < take) {
                ByteBuffer bigger = ByteBuffer.allocate((int) Math.min(bitmapSize, Math.max(2L * bitmap.capacity(),
                        bitmap.position() + (long) take)));
                bitmap.flip();
                bitmap = bigger.put(bitmap);
            }
            bitmap.put(b.duplicate().position(p).limit(p + take));
            return p + take;
        }
        if (avail < 8) {
            return -1;
        }
        long ending = b.getLong(p);
        if (ending != Wire.RECV_BITMAP_ENDING) {
            throw new CodecException(Kind.MALFORMED, off, "RECV_BITMAP ending", WireIO.hex(ending), "0x123456789abcdef");
        }
        bitmap.flip();
        ReturnPathMessage m = new ReturnPathMessage.RecvBitmap(bitmapBlock, bitmap);
        bitmapBlock = null;
        bitmap = null;
        handler.onMessage(m, bitmapOffset);
        return p + 8;
    }
}
