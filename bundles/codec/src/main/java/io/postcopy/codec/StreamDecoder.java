package io.postcopy.codec;

import io.postcopy.codec.CodecException.Kind;
import io.postcopy.codec.internal.CommandCodec;
import io.postcopy.codec.internal.PackageParser;
import io.postcopy.codec.internal.WireIO;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ReadableByteChannel;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Strict, incremental decoder of the main migration stream (source to destination).
 *
 * <p>Feed it with {@link #decode(ByteBuffer)} (it consumes whole records only and leaves a split record's
 * bytes in the buffer for the caller to compact and complete) or let it pull from a channel with
 * {@link #decode(ReadableByteChannel)}. Every length is checked against the wire tables before it is used;
 * every page and discard is range-checked against its block. No object is allocated per PAGE or ZERO
 * record: the page is handed to {@link StreamHandler#onPage} in place.
 *
 * <p>Not thread-safe: one decoder per stream, driven by one thread.
 */
public final class StreamDecoder {

    /**
     * Smallest buffer that holds any atomic record: a command with a 65535-byte payload, a MEM_SIZE list of
     * {@link Wire#MAX_RAM_BLOCKS} blocks, a page record with a 255-byte idstr.
     */
    public static final int MIN_BUFFER_CAPACITY = 128 * 1024;

    private enum State { HEADER, TOP, RAM_BODY, FOOTER, PACKAGE, DONE }

    private final StreamHandler handler;
    private final DecoderOptions options;
    private final int tps;
    private final long flagMask;

    private State state = State.HEADER;
    /** Stream offset of the next unconsumed byte. */
    private long consumed;
    private boolean anyRecord;

    private final Map<Integer, SectionHeader> openSections = new HashMap<>();
    private SectionHeader current;
    private boolean expectMemSize;
    private boolean memSizeSeen;

    private RamBlockInfo[] blocks;
    private byte[][] blockNames;
    private BlockValidator rangeCheck;
    private RamBlockInfo lastBlock;

    private ByteBuffer pkg;
    private long pkgLength;
    private long pkgOffset;
    /** A postcopy (preempt) channel: RAM records only, ended by one EOS. */
    private boolean ramChannel;

    public StreamDecoder(StreamHandler handler) {
        this(handler, DecoderOptions.defaults());
    }

    public StreamDecoder(StreamHandler handler, DecoderOptions options) {
        this.handler = handler;
        this.options = options;
        this.tps = options.targetPageSize();
        this.flagMask = tps - 1;
    }

    /**
     * A decoder for QEMU's postcopy-preempt channel (the seed's {@code postcopy_preempt_thread}): no header,
     * no sections, only PAGE and ZERO records of the main stream's {@code blocks} (CONTINUE refers to the last
     * block named on this channel), ended by one EOS, after which {@link #decode(ByteBuffer)} returns true.
     * MEM_SIZE, commands and any other record are malformed here.
     *
     * @param blocks the block list of the main stream, from its MEM_SIZE
     */
    public static StreamDecoder forPostcopyChannel(StreamHandler handler, DecoderOptions options, List<RamBlockInfo> blocks) {
        if (blocks.isEmpty()) throw new IllegalArgumentException("no RAM blocks: the main stream's MEM_SIZE comes first");
        StreamDecoder d = withBlockList(handler, options, blocks);
        d.ramChannel = true;
        d.state = State.RAM_BODY;
        return d;
    }

    /**
     * A decoder for a main stream that goes on over a new connection after a postcopy pause (QEMU's postcopy
     * recovery): no header, no configuration; the block list and the open RAM section are those the first
     * connection had. Top-level records (commands such as RECV_BITMAP and POSTCOPY_RESUME, then PART and END of
     * {@code ramSection}, then EOF) follow as on the first connection.
     *
     * @param blocks     the stream's block list, from the first connection's MEM_SIZE
     * @param ramSection the RAM section the first connection opened (its START header)
     */
    public static StreamDecoder forResumedStream(StreamHandler handler, DecoderOptions options, List<RamBlockInfo> blocks,
                                                 SectionHeader ramSection) {
        if (blocks.isEmpty()) throw new IllegalArgumentException("no RAM blocks: a resumed stream continues one with a block list");
        if (!"ram".equals(ramSection.idstr())) throw new IllegalArgumentException("not the RAM section: " + ramSection);
        StreamDecoder d = withBlockList(handler, options, blocks);
        d.openSections.put(ramSection.sectionId(), ramSection);
        d.state = State.TOP;
        return d;
    }

    /** A decoder that knows {@code blocks} already, as if it had read their MEM_SIZE. */
    private static StreamDecoder withBlockList(StreamHandler handler, DecoderOptions options, List<RamBlockInfo> blocks) {
        StreamDecoder d = new StreamDecoder(handler, options);
        d.blocks = blocks.toArray(new RamBlockInfo[0]);
        d.blockNames = new byte[d.blocks.length][];
        for (int i = 0; i < d.blocks.length; i++) {
            d.blockNames[i] = d.blocks[i].idstr().getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        }
        d.rangeCheck = options.validator() != null ? options.validator() : new BlockValidator(blocks, d.tps);
        d.memSizeSeen = true;
        d.anyRecord = true;
        return d;
    }

    /** The RAM section this stream opened (its START), or null before it: what a resumed stream continues. */
    public SectionHeader ramSection() {
        for (SectionHeader h : openSections.values()) if ("ram".equals(h.idstr())) return h;
        return null;
    }

    /** Stream offset of the next byte the decoder will consume. */
    public long offset() {
        return consumed;
    }

    /** Whether EOF has been decoded. */
    public boolean finished() {
        return state == State.DONE;
    }

    /** The RAM blocks from MEM_SIZE, or an empty list before it. */
    public List<RamBlockInfo> blocks() {
        return blocks == null ? List.of() : Collections.unmodifiableList(List.of(blocks));
    }

    /**
     * Decodes every whole record in {@code in}, from its position to its limit, and leaves the position at
     * the first byte of an incomplete record (or at the limit). The buffer's byte order is set to big-endian.
     *
     * @return true once EOF has been decoded (bytes after it are not consumed)
     */
    public boolean decode(ByteBuffer in) throws IOException {
        in.order(ByteOrder.BIG_ENDIAN);
        long base = consumed - in.position();
        try {
            while (state != State.DONE) {
                int p = in.position();
                int end = step(in, p, in.limit(), base);
                if (end < 0) {
                    break;
                }
                in.position(end);
                consumed = base + end;
            }
        } finally {
            consumed = base + in.position();
        }
        return state == State.DONE;
    }

    /**
     * Reads the channel to EOF of the migration stream, with a direct receive buffer of
     * {@link #MIN_BUFFER_CAPACITY} (or {@code bufferSize} if larger).
     *
     * @throws CodecException of kind TRUNCATED if the channel ends first
     */
    public void decode(ReadableByteChannel ch, int bufferSize) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.max(bufferSize, MIN_BUFFER_CAPACITY));
        while (true) {
            int n = ch.read(buf);
            buf.flip();
            boolean done = decode(buf);
            buf.compact();
            if (done) {
                return;
            }
            if (n < 0) {
                finish();
                return;
            }
        }
    }

    public void decode(ReadableByteChannel ch) throws IOException {
        decode(ch, MIN_BUFFER_CAPACITY);
    }

    /** Declares the end of input: raises TRUNCATED unless EOF was decoded. */
    public void finish() throws CodecException {
        if (state != State.DONE) {
            throw new CodecException(Kind.TRUNCATED, consumed, ramChannel ? "postcopy channel" : "stream",
                    "end of input in state " + state, ramChannel ? "EOS record 0x10" : "EOF record 0x00");
        }
    }

    /** One atomic unit from {@code p}; returns its end, or -1 if more bytes are needed. */
    private int step(ByteBuffer b, int p, int lim, long base) throws IOException {
        long off = base + p;
        int avail = lim - p;
        switch (state) {
            case HEADER:
                if (avail < 8) {
                    return -1;
                }
                int magic = b.getInt(p);
                if (magic == Wire.MULTIFD_MAGIC) {
                    // QEMU's multifd channels open with their own packet (MultiFDInit_t), magic first
                    throw new CodecException(Kind.UNSUPPORTED, off, "magic", WireIO.hex(magic & 0xffffffffL)
                            + " (a multifd channel)", "0x5145564d (QEVM): capability multifd is not supported, turn it off on the source");
                }
                if (magic != Wire.MAGIC) {
                    throw new CodecException(Kind.MALFORMED, off, "magic", WireIO.hex(magic & 0xffffffffL), "0x5145564d (QEVM)");
                }
                int version = b.getInt(p + 4);
                if (version != Wire.VERSION) {
                    throw new CodecException(Kind.UNSUPPORTED, off + 4, "stream version", version, "3");
                }
                handler.onHeader(version);
                state = State.TOP;
                return p + 8;
            case TOP:
                return top(b, p, avail, off);
            case RAM_BODY:
                return ramRecord(b, p, avail, off);
            case FOOTER:
                if (avail < 5) {
                    return -1;
                }
                int marker = WireIO.u8(b, p);
                int id = b.getInt(p + 1);
                if (marker != SectionType.FOOTER.code() || id != current.sectionId()) {
                    throw new CodecException(Kind.MALFORMED, off, "section footer",
                            WireIO.hex(marker) + " id " + id, "0x7e id " + current.sectionId());
                }
                if (current.type() == SectionType.END) {
                    openSections.remove(id);
                }
                SectionHeader done = current;
                current = null;
                state = State.TOP;
                handler.onSectionEnd(done);
                return p + 5;
            case PACKAGE:
                return packageBytes(b, p, avail);
            default:
                return -1;
        }
    }

    private int top(ByteBuffer b, int p, int avail, long off) throws IOException {
        if (avail < 1) {
            return -1;
        }
        int code = WireIO.u8(b, p);
        SectionType t = SectionType.of(code);
        if (t == null) {
            throw new CodecException(Kind.MALFORMED, off, "section type", WireIO.hex(code), "0x00..0x08");
        }
        boolean first = !anyRecord;
        switch (t) {
            case EOF:
                if (!openSections.isEmpty()) {
                    throw new CodecException(Kind.MALFORMED, off, "EOF", "sections still open " + openSections.keySet(),
                            "every START ended by END");
                }
                anyRecord = true;
                state = State.DONE;
                handler.onEof();
                return p + 1;
            case CONFIGURATION: {
                if (!first) {
                    throw new CodecException(Kind.MALFORMED, off, "configuration section", "after other records",
                            "right after the header");
                }
                if (avail < 5) {
                    return -1;
                }
                long len = b.getInt(p + 1) & 0xffffffffL;
                if (len == 0 || len > Wire.MAX_CONFIGURATION_NAME) {
                    throw new CodecException(Kind.MALFORMED, off + 1, "configuration name length", len,
                            "1.." + Wire.MAX_CONFIGURATION_NAME);
                }
                if (avail < 5 + len) {
                    return -1;
                }
                String name = configName(b, p + 5, (int) len, off + 5);
                anyRecord = true;
                handler.onConfiguration(name);
                return p + 5 + (int) len;
            }
            case START:
            case FULL: {
                if (avail < 6) {
                    return -1;
                }
                int id = b.getInt(p + 1);
                int len = WireIO.u8(b, p + 5);
                if (avail < 6 + len + 8) {
                    return -1;
                }
                String idstr = WireIO.name(b, p + 6, len, off + 5, "section idstr");
                if (!"ram".equals(idstr) || t == SectionType.FULL) {
                    throw new CodecException(Kind.UNSUPPORTED, off, "top-level section", t + " " + idstr,
                            "START of \"ram\" (device sections are only delimited inside a package)");
                }
                if (openSections.containsKey(id)) {
                    throw new CodecException(Kind.MALFORMED, off + 1, "section id", id, "an id not already open");
                }
                if (memSizeSeen) {
                    throw new CodecException(Kind.MALFORMED, off, "section", "second START of ram", "one RAM setup per stream");
                }
                SectionHeader h = new SectionHeader(t, id, idstr, b.getInt(p + 6 + len), b.getInt(p + 10 + len));
                openSections.put(id, h);
                current = h;
                expectMemSize = true;
                state = State.RAM_BODY;
                anyRecord = true;
                handler.onSectionStart(h);
                return p + 6 + len + 8;
            }
            case PART:
            case END: {
                if (avail < 5) {
                    return -1;
                }
                int id = b.getInt(p + 1);
                SectionHeader opened = openSections.get(id);
                if (opened == null) {
                    throw new CodecException(Kind.MALFORMED, off + 1, t + " section id", id,
                            "an open section " + openSections.keySet());
                }
                SectionHeader h = new SectionHeader(t, id, opened.idstr(), opened.instanceId(), opened.versionId());
                current = h;
                expectMemSize = false;
                state = State.RAM_BODY;
                anyRecord = true;
                handler.onSectionStart(h);
                return p + 5;
            }
            case COMMAND:
                return command(b, p, avail, off);
            case FOOTER:
                throw new CodecException(Kind.MALFORMED, off, "section type", "0x7e (footer)", "a section or command outside a section body");
            default: // SUBSECTION, VMDESCRIPTION
                throw new CodecException(Kind.UNSUPPORTED, off, "section type", t, "EOF, START, PART, END, CONFIGURATION or COMMAND");
        }
    }

    private static String configName(ByteBuffer b, int p, int len, long off) throws CodecException {
        StringBuilder s = new StringBuilder(len);
        for (int i = 0; i < len; i++) {
            int c = WireIO.u8(b, p + i);
            if (c < 0x20 || c > 0x7e) {
                throw new CodecException(Kind.MALFORMED, off + i, "configuration name", "byte " + WireIO.hex(c), "printable ASCII");
            }
            s.append((char) c);
        }
        return s.toString();
    }

    private int command(ByteBuffer b, int p, int avail, long off) throws IOException {
        if (avail < CommandCodec.HEADER) {
            return -1;
        }
        CommandType t = CommandCodec.checkHeader(b, p, off);
        int len = WireIO.u16(b, p + 3);
        if (avail < CommandCodec.HEADER + len) {
            return -1;
        }
        Command c = CommandCodec.parse(t, b, p + CommandCodec.HEADER, len, off + CommandCodec.HEADER, rangeCheck);
        anyRecord = true;
        int end = p + CommandCodec.HEADER + len;
        if (c instanceof Command.Packaged pk) {
            long n = b.getInt(p + CommandCodec.HEADER) & 0xffffffffL;
            if (n > options.maxPackageSize()) {
                throw new CodecException(Kind.LIMIT, off + CommandCodec.HEADER, "package length", n,
                        "<= " + options.maxPackageSize() + " (configured cap)");
            }
            pkgLength = n;
            pkgOffset = off + CommandCodec.HEADER + len;
            // Grown as bytes arrive: the untrusted length alone never decides an allocation.
            pkg = ByteBuffer.allocate((int) Math.min(n, 64 * 1024));
            state = State.PACKAGE;
            handler.onCommand(pk);
            if (n == 0) {
                return packageDone(end);
            }
            return end;
        }
        handler.onCommand(c);
        return end;
    }

    private int packageBytes(ByteBuffer b, int p, int avail) throws IOException {
        if (avail == 0) {
            return -1;
        }
        int take = (int) Math.min(avail, pkgLength - pkg.position());
        if (pkg.remaining() < take) {
            int cap = (int) Math.min(pkgLength, Math.max((long) pkg.capacity() * 2, pkg.position() + (long) take));
            ByteBuffer bigger = ByteBuffer.allocate(cap);
            pkg.flip();
            bigger.put(pkg);
            pkg = bigger;
        }
        pkg.put(b.duplicate().position(p).limit(p + take));
        if (pkg.position() == pkgLength) {
            return packageDone(p + take);
        }
        return p + take;
    }

    private int packageDone(int end) throws IOException {
        pkg.flip();
        PackageContents contents = PackageParser.parse(pkg, pkgOffset, rangeCheck);
        pkg = null;
        state = State.TOP;
        handler.onPackage(contents);
        return end;
    }

    private int ramRecord(ByteBuffer b, int p, int avail, long off) throws IOException {
        if (avail < 8) {
            return -1;
        }
        long header = b.getLong(p);
        int flags = (int) (header & flagMask);
        long addr = header & ~flagMask;
        RamFlag unsupported = RamFlag.firstUnsupported(flags);
        if (unsupported != null) {
            String cap = unsupported.capability();
            throw new CodecException(Kind.UNSUPPORTED, off, "RAM flag", unsupported + " (" + WireIO.hex(unsupported.bit())
                    + (cap == null ? ")" : ", sent with QEMU's " + cap + " capability)"),
                    "ZERO, MEM_SIZE, PAGE, EOS, CONTINUE" + (cap == null ? ""
                            : " (capability " + cap + " is not supported: turn it off on the source)"));
        }
        int kind = flags & ~RamFlag.CONTINUE.bit();
        boolean cont = (flags & RamFlag.CONTINUE.bit()) != 0;
        if (expectMemSize && kind != RamFlag.MEM_SIZE.bit()) {
            throw new CodecException(Kind.MALFORMED, off, "RAM flags", WireIO.hex(flags), "MEM_SIZE first in the RAM setup section");
        }
        if (kind == RamFlag.PAGE.bit() || kind == RamFlag.ZERO.bit()) {
            if (blocks == null) {
                throw new CodecException(Kind.MALFORMED, off, "RAM record", "page before MEM_SIZE", "MEM_SIZE first");
            }
            int q = p + 8;
            RamBlockInfo block;
            if (cont) {
                block = lastBlock;
                if (block == null) {
                    throw new CodecException(Kind.MALFORMED, off, "RAM flags", "CONTINUE", "a block named by an earlier record");
                }
            } else {
                if (avail < 9) {
                    return -1;
                }
                int len = WireIO.u8(b, q);
                if (avail < 9 + len) {
                    return -1;
                }
                block = findBlock(b, q, len, off + 8);
                q += 1 + len;
            }
            int need = kind == RamFlag.PAGE.bit() ? tps : 1;
            if (lim(b) - q < need) {
                return -1;
            }
            BlockValidator.checkPage(off, block, addr, tps);
            lastBlock = block;
            int lim = b.limit();
            if (kind == RamFlag.PAGE.bit()) {
                handler.onPage(block, addr, b, q, tps);
            } else {
                handler.onZero(block, addr, WireIO.u8(b, q), tps);
            }
            b.limit(lim);
            return q + need;
        }
        if (kind == RamFlag.EOS.bit()) {
            if (cont || addr != 0) {
                throw new CodecException(Kind.MALFORMED, off, "EOS record", WireIO.hex(header), "0x10");
            }
            state = ramChannel ? State.DONE : State.FOOTER;
            handler.onRamEos();
            return p + 8;
        }
        if (kind == RamFlag.MEM_SIZE.bit()) {
            if (!expectMemSize || cont || ramChannel) {
                throw new CodecException(Kind.MALFORMED, off, "RAM flags", WireIO.hex(flags),
                        "MEM_SIZE only first in the RAM setup section");
            }
            return memSize(b, p, avail, off, addr);
        }
        throw new CodecException(Kind.MALFORMED, off, "RAM flags", WireIO.hex(flags),
                "exactly one of ZERO, MEM_SIZE, PAGE, EOS (with CONTINUE for ZERO or PAGE)");
    }

    private static int lim(ByteBuffer b) {
        return b.limit();
    }

    private RamBlockInfo findBlock(ByteBuffer b, int q, int len, long off) throws CodecException {
        for (int i = 0; i < blockNames.length; i++) {
            byte[] n = blockNames[i];
            if (n.length != len) {
                continue;
            }
            int j = 0;
            while (j < len && b.get(q + 1 + j) == n[j]) {
                j++;
            }
            if (j == len) {
                return blocks[i];
            }
        }
        String name = WireIO.name(b, q + 1, len, off, "RAM record idstr");
        throw new CodecException(Kind.OUT_OF_BLOCK, off, "RAM record idstr", name, "a block from MEM_SIZE");
    }

    private int memSize(ByteBuffer b, int p, int avail, long off, long total) throws IOException {
        if (total == 0) {
            throw new CodecException(Kind.MALFORMED, off, "MEM_SIZE total", 0, "> 0");
        }
        BlockValidator local = options.validator();
        List<RamBlockInfo> list = new ArrayList<>();
        int q = p + 8;
        long sum = 0;
        while (sum < total) {
            if (list.size() == Wire.MAX_RAM_BLOCKS) {
                throw new CodecException(Kind.LIMIT, off + (q - p), "MEM_SIZE block count", "> " + Wire.MAX_RAM_BLOCKS,
                        "<= " + Wire.MAX_RAM_BLOCKS);
            }
            if (p + avail < q + 1) {
                return -1;
            }
            int len = WireIO.u8(b, q);
            if (p + avail < q + 1 + len + 8) {
                return -1;
            }
            long blockOff = off + (q - p);
            String name = WireIO.name(b, q + 1, len, blockOff, "MEM_SIZE block idstr");
            long used = b.getLong(q + 1 + len);
            q += 1 + len + 8;
            if (used <= 0 || used % tps != 0 || used > total - sum) {
                throw new CodecException(Kind.MALFORMED, blockOff + 1 + len, "used length of " + name, used,
                        "a positive multiple of " + tps + " <= " + (total - sum) + " (rest of MEM_SIZE total)");
            }
            for (RamBlockInfo other : list) {
                if (other.idstr().equals(name)) {
                    throw new CodecException(Kind.MALFORMED, blockOff, "MEM_SIZE block idstr", name, "each block once");
                }
            }
            long pageSize = options.hostPageSize();
            if (local != null) {
                pageSize = local.checkStreamBlock(blockOff, name, used).pageSize();
            }
            if (options.postcopyRam() && pageSize != options.hostPageSize()) {
                if (p + avail < q + 8) {
                    return -1;
                }
                long remote = b.getLong(q);
                if (remote != pageSize) {
                    throw new CodecException(Kind.OUT_OF_BLOCK, off + (q - p), "page size of " + name, remote, String.valueOf(pageSize));
                }
                q += 8;
            }
            list.add(new RamBlockInfo(list.size(), name, used, pageSize));
            sum += used;
        }
        blocks = list.toArray(new RamBlockInfo[0]);
        blockNames = new byte[blocks.length][];
        for (int i = 0; i < blocks.length; i++) {
            blockNames[i] = blocks[i].idstr().getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        }
        rangeCheck = local != null ? local : new BlockValidator(list, tps);
        expectMemSize = false;
        memSizeSeen = true;
        handler.onRamBlockList(List.of(blocks));
        return q;
    }
}
