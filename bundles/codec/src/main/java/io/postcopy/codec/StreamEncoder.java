package io.postcopy.codec;

import io.postcopy.codec.internal.CommandCodec;
import io.postcopy.codec.internal.NativeMemory;
import io.postcopy.codec.internal.WireIO;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Writes the main migration stream into a send buffer that it drains to a channel when full (and on
 * {@link #flush()}). Page records are framed around the page bytes, which are copied exactly once, from
 * the caller's buffer or native address straight into the send buffer; nothing is allocated per page.
 *
 * <p>Tracks the last block written so that PAGE and ZERO records use CONTINUE exactly as QEMU does.
 * Arguments that break the layout (a 256-byte name, an unaligned offset) are programming errors and raise
 * {@link IllegalArgumentException}. Not thread-safe.
 */
public final class StreamEncoder {
    private final WritableByteChannel out;
    private final ByteBuffer buf;
    private final int tps;
    private RamBlockInfo lastBlock;
    private long written;

    /** What {@link #encode} writes: records on the encoder it is given. */
    @FunctionalInterface
    public interface Body {
        void write(StreamEncoder e) throws IOException;
    }

    /**
     * A stream (or a part of one) built in memory: {@code body} writes on a fresh encoder, whose bytes come back
     * flushed. For recorded streams, fixtures and tools; a migration writes to its socket instead.
     */
    public static byte[] encode(Body body) throws IOException {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        StreamEncoder e = new StreamEncoder(java.nio.channels.Channels.newChannel(bytes));
        body.write(e);
        e.flush();
        return bytes.toByteArray();
    }

    public StreamEncoder(WritableByteChannel out) {
        this(out, 256 * 1024, Wire.DEFAULT_TARGET_PAGE_SIZE);
    }

    /**
     * @param bufferSize send buffer size, at least 70 KiB (a full command)
     */
    public StreamEncoder(WritableByteChannel out, int bufferSize, int targetPageSize) {
        if (bufferSize < 70 * 1024) {
            throw new IllegalArgumentException("buffer too small: " + bufferSize);
        }
        this.out = out;
        this.buf = ByteBuffer.allocateDirect(bufferSize).order(ByteOrder.BIG_ENDIAN);
        this.tps = targetPageSize;
    }

    /** Bytes written so far (sent or buffered). */
    public long position() {
        return written + buf.position();
    }

    private ByteBuffer room(int n) throws IOException {
        if (buf.remaining() < n) {
            flushBuffer();
        }
        return buf;
    }

    private void flushBuffer() throws IOException {
        buf.flip();
        while (buf.hasRemaining()) {
            written += out.write(buf);
        }
        buf.clear();
    }

    /** Drains the send buffer to the channel. */
    public void flush() throws IOException {
        flushBuffer();
    }

    public StreamEncoder writeHeader() throws IOException {
        room(8).putInt(Wire.MAGIC).putInt(Wire.VERSION);
        return this;
    }

    public StreamEncoder writeConfiguration(String machineName) throws IOException {
        byte[] n = machineName.getBytes(StandardCharsets.ISO_8859_1);
        if (n.length == 0 || n.length > Wire.MAX_CONFIGURATION_NAME) {
            throw new IllegalArgumentException("machine name length " + n.length);
        }
        room(5 + n.length).put((byte) SectionType.CONFIGURATION.code()).putInt(n.length).put(n);
        return this;
    }

    /** START or FULL header (type, id, idstr, instance, version). */
    public StreamEncoder writeSectionStart(SectionType type, int sectionId, String idstr, int instanceId, int versionId)
            throws IOException {
        if (type != SectionType.START && type != SectionType.FULL) {
            throw new IllegalArgumentException(type + " has no idstr");
        }
        room(6 + 255 + 8).put((byte) type.code()).putInt(sectionId);
        WireIO.putName(buf, idstr);
        buf.putInt(instanceId).putInt(versionId);
        return this;
    }

    /** PART or END header. */
    public StreamEncoder writeSectionPart(SectionType type, int sectionId) throws IOException {
        if (type != SectionType.PART && type != SectionType.END) {
            throw new IllegalArgumentException(type + " is not PART or END");
        }
        room(5).put((byte) type.code()).putInt(sectionId);
        return this;
    }

    public StreamEncoder writeFooter(int sectionId) throws IOException {
        room(5).put((byte) SectionType.FOOTER.code()).putInt(sectionId);
        return this;
    }

    /**
     * The RAM setup record: be64 total | MEM_SIZE, then per block idstr and used length, and the page size
     * when {@code postcopyRam} and it differs from {@code hostPageSize}.
     */
    public StreamEncoder writeMemSize(List<RamBlockInfo> blocks, boolean postcopyRam, long hostPageSize) throws IOException {
        long total = 0;
        for (RamBlockInfo b : blocks) {
            total += b.usedLength();
        }
        if ((total & (tps - 1)) != 0) {
            throw new IllegalArgumentException("total not page aligned");
        }
        room(8).putLong(total | RamFlag.MEM_SIZE.bit());
        for (RamBlockInfo b : blocks) {
            room(1 + 255 + 16);
            WireIO.putName(buf, b.idstr());
            buf.putLong(b.usedLength());
            if (postcopyRam && b.pageSize() != hostPageSize) {
                buf.putLong(b.pageSize());
            }
        }
        return this;
    }

    private void pageHeader(RamBlockInfo block, long offset, int kind) {
        if ((offset & (tps - 1)) != 0 || offset < 0) {
            throw new IllegalArgumentException("unaligned page offset " + offset);
        }
        if (block == lastBlock) {
            buf.putLong(offset | kind | RamFlag.CONTINUE.bit());
        } else {
            buf.putLong(offset | kind);
            WireIO.putName(buf, block.idstr());
            lastBlock = block;
        }
    }

    /** A PAGE record whose bytes are {@code src[position, position + targetPageSize)} (absolute; src is not moved). */
    public StreamEncoder writePage(RamBlockInfo block, long offset, ByteBuffer src, int position) throws IOException {
        room(8 + 256 + tps);
        pageHeader(block, offset, RamFlag.PAGE.bit());
        buf.put(buf.position(), src, position, tps);
        buf.position(buf.position() + tps);
        return this;
    }

    /**
     * A PAGE record read straight from native memory at {@code address} (a RAM block's host mapping).
     * Requires {@code sun.misc.Unsafe} (present in every OpenJDK).
     */
    public StreamEncoder writePage(RamBlockInfo block, long offset, long address) throws IOException {
        room(8 + 256 + tps);
        pageHeader(block, offset, RamFlag.PAGE.bit());
        NativeMemory.copyToBuffer(address, buf, buf.position(), tps);
        buf.position(buf.position() + tps);
        return this;
    }

    public StreamEncoder writeZero(RamBlockInfo block, long offset, int fill) throws IOException {
        room(8 + 256 + 1);
        pageHeader(block, offset, RamFlag.ZERO.bit());
        buf.put((byte) fill);
        return this;
    }

    public StreamEncoder writeEos() throws IOException {
        room(8).putLong(RamFlag.EOS.bit());
        return this;
    }

    /** Forgets the last block, so that the next page names its block again. */
    public void resetContinue() {
        lastBlock = null;
    }

    /** Any command except PACKAGED (use {@link #writePackaged}). */
    public StreamEncoder writeCommand(Command c) throws IOException {
        if (c instanceof Command.Packaged) {
            throw new IllegalArgumentException("use writePackaged");
        }
        CommandCodec.write(c, room(5 + c.payloadLength()));
        return this;
    }

    /** PACKAGED with its blob (the remaining bytes of {@code pkg}, which is consumed). */
    public StreamEncoder writePackaged(ByteBuffer pkg) throws IOException {
        CommandCodec.write(new Command.Packaged(pkg.remaining()), room(9));
        while (pkg.hasRemaining()) {
            if (!buf.hasRemaining()) {
                flushBuffer();
            }
            int n = Math.min(buf.remaining(), pkg.remaining());
            buf.put(pkg.duplicate().limit(pkg.position() + n));
            pkg.position(pkg.position() + n);
        }
        return this;
    }

    public StreamEncoder writeEof() throws IOException {
        room(1).put((byte) SectionType.EOF.code());
        return this;
    }
}
