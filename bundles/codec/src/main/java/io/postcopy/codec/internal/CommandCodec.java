package io.postcopy.codec.internal;

import io.postcopy.codec.BlockValidator;
import io.postcopy.codec.CodecException;
import io.postcopy.codec.CodecException.Kind;
import io.postcopy.codec.Command;
import io.postcopy.codec.CommandType;
import io.postcopy.codec.DiscardRange;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.Wire;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/** Command records: header check against the {@link CommandType} table, payload parse, and write. */
public final class CommandCodec {
    private CommandCodec() {
    }

    /** Bytes of a command header after the 0x08 marker: be16 command, be16 length. */
    public static final int HEADER = 5;

    /**
     * Looks the command up and checks its length against the table, before any payload byte is read.
     *
     * @param p position of the 0x08 marker, with at least {@link #HEADER} bytes readable
     */
    public static CommandType checkHeader(ByteBuffer b, int p, long off) throws CodecException {
        int number = WireIO.u16(b, p + 1);
        CommandType t = CommandType.of(number);
        if (t == null) {
            throw new CodecException(Kind.MALFORMED, off + 1, "command", number, CommandType.KNOWN_NUMBERS);
        }
        int len = WireIO.u16(b, p + 3);
        if (!t.acceptsLength(len)) {
            throw new CodecException(Kind.MALFORMED, off + 3, "command length", len, t.expectedLength());
        }
        return t;
    }

    /**
     * Parses a payload already known to be complete and of a length accepted by the table.
     *
     * @param p      payload position
     * @param off    stream offset of the payload
     * @param blocks range checks for discards, or {@code null} when no block list is known yet
     */
    public static Command parse(CommandType t, ByteBuffer b, int p, int len, long off, BlockValidator blocks)
            throws CodecException {
        switch (t) {
            case OPEN_RETURN_PATH:
                return new Command.OpenReturnPath();
            case PING:
                return new Command.Ping(b.getInt(p));
            case POSTCOPY_ADVISE:
                if (len == 0) {
                    return new Command.PostcopyAdvise(false, 0, 0);
                }
                long summary = b.getLong(p);
                long tps = b.getLong(p + 8);
                if (tps <= 0 || Long.bitCount(tps) != 1) {
                    throw new CodecException(Kind.MALFORMED, off + 8, "ADVISE target page size", tps, "a power of two");
                }
                if (summary == 0 || (summary & (tps - 1)) != 0) {
                    throw new CodecException(Kind.MALFORMED, off, "ADVISE page size summary", WireIO.hex(summary),
                            "non-zero, no page size below the target page size " + WireIO.hex(tps));
                }
                return new Command.PostcopyAdvise(true, summary, tps);
            case POSTCOPY_LISTEN:
                return new Command.PostcopyListen();
            case POSTCOPY_RUN:
                return new Command.PostcopyRun();
            case POSTCOPY_RAM_DISCARD:
                return parseDiscard(b, p, len, off, blocks);
            case PACKAGED:
                long n = b.getInt(p) & 0xffffffffL;
                return new Command.Packaged((int) Math.min(n, Integer.MAX_VALUE));
            case ENABLE_COLO:
                return new Command.EnableColo();
            case POSTCOPY_RESUME:
                return new Command.PostcopyResume();
            case RECV_BITMAP: {
                int nameLen = WireIO.u8(b, p);
                if (1 + nameLen != len) {
                    throw new CodecException(Kind.MALFORMED, off, "RECV_BITMAP name length", nameLen,
                            (len - 1) + " (command length - 1)");
                }
                return new Command.RecvBitmap(WireIO.name(b, p + 1, nameLen, off, "RECV_BITMAP block"));
            }
            case SWITCHOVER_START:
                return new Command.SwitchoverStart();
            case PEER_ID: {
                int idLen = WireIO.u8(b, p);
                if (1 + idLen != len) {
                    throw new CodecException(Kind.MALFORMED, off, "PEER_ID length", idLen, (len - 1) + " (command length - 1)");
                }
                return new Command.PeerId(WireIO.name(b, p + 1, idLen, off, "PEER_ID"));
            }
            case CHANNEL_TOKEN: {
                byte[] token = new byte[Wire.CHANNEL_TOKEN_BYTES];
                b.get(p, token);
                return new Command.ChannelToken(token);
            }
            default:
                throw new AssertionError(t);
        }
    }

    private static Command parseDiscard(ByteBuffer b, int p, int len, long off, BlockValidator blocks)
            throws CodecException {
        int version = WireIO.u8(b, p);
        if (version != Wire.DISCARD_VERSION) {
            throw new CodecException(Kind.UNSUPPORTED, off, "discard version", version, "0");
        }
        int nameLen = WireIO.u8(b, p + 1);
        if (nameLen == 0 || 3 + nameLen > len) {
            throw new CodecException(Kind.MALFORMED, off + 1, "discard name length", nameLen,
                    "1.." + Math.min(255, len - 3) + " (fits the command length " + len + ")");
        }
        String name = WireIO.name(b, p + 2, nameLen, off + 1, "discard block");
        int nul = WireIO.u8(b, p + 2 + nameLen);
        if (nul != 0) {
            throw new CodecException(Kind.MALFORMED, off + 2 + nameLen, "discard name terminator", nul, "0x00");
        }
        int rest = len - 3 - nameLen;
        if (rest % 16 != 0 || rest == 0 || rest / 16 > Wire.MAX_DISCARDS_PER_COMMAND) {
            throw new CodecException(Kind.MALFORMED, off - 2, "command length", len,
                    (3 + nameLen) + " + 16*k with 1 <= k <= " + Wire.MAX_DISCARDS_PER_COMMAND);
        }
        if (blocks == null) {
            throw new CodecException(Kind.MALFORMED, off, "discard before block list", name, "MEM_SIZE first");
        }
        List<DiscardRange> ranges = new ArrayList<>(rest / 16);
        for (int q = p + 3 + nameLen; q < p + len; q += 16) {
            long start = b.getLong(q);
            long length = b.getLong(q + 8);
            blocks.checkDiscard(off + (q - p), name, start, length);
            ranges.add(new DiscardRange(start, length));
        }
        return new Command.PostcopyRamDiscard(name, ranges);
    }

    /** Writes header and payload. For PACKAGED only the be32 count; the caller writes the blob. */
    public static void write(Command c, ByteBuffer b) {
        b.put((byte) SectionType.COMMAND.code()).putShort((short) c.type().number()).putShort((short) c.payloadLength());
        if (c instanceof Command.Ping ping) {
            b.putInt(ping.value());
        } else if (c instanceof Command.PostcopyAdvise a) {
            if (a.withSizes()) {
                b.putLong(a.pageSizeSummary()).putLong(a.targetPageSize());
            }
        } else if (c instanceof Command.PostcopyRamDiscard d) {
            b.put((byte) Wire.DISCARD_VERSION);
            WireIO.putName(b, d.block());
            b.put((byte) 0);
            for (DiscardRange r : d.ranges()) {
                b.putLong(r.start()).putLong(r.length());
            }
        } else if (c instanceof Command.Packaged pk) {
            b.putInt(pk.length());
        } else if (c instanceof Command.RecvBitmap rb) {
            WireIO.putName(b, rb.block());
        } else if (c instanceof Command.ChannelToken t) {
            b.put(t.token());
        } else if (c instanceof Command.PeerId p) {
            WireIO.putName(b, p.id());
        }
    }
}
