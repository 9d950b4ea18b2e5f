package io.postcopy.codec.internal;

import io.postcopy.codec.BlockValidator;
import io.postcopy.codec.CodecException;
import io.postcopy.codec.CodecException.Kind;
import io.postcopy.codec.Command;
import io.postcopy.codec.CommandType;
import io.postcopy.codec.DeviceSection;
import io.postcopy.codec.PackageContents;
import io.postcopy.codec.SectionType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Splits a package into leading commands, opaque device sections and trailing commands.
 *
 * <p>Device sections carry no length. A section ends at a footer {@code 0x7e} + its own section id that is
 * followed either by the trailing commands or by a plausible next FULL header (printable idstr, larger
 * section id: QEMU numbers sections in registration order and saves them in that order). The trailing
 * commands are found first: the earliest suffix, right after a footer, that parses as whole commands to the
 * end of the package.
 */
public final class PackageParser {
    private PackageParser() {
    }

    /** Sizes of the fixed part of a FULL header around the idstr: type, be32 id, u8 len | be32 instance, be32 version. */
    private static final int HEADER_FIXED = 1 + 4 + 1 + 4 + 4;
    private static final int FOOTER = 5;

    public static PackageContents parse(ByteBuffer pkg, long streamOffset, BlockValidator blocks) throws CodecException {
        ByteBuffer b = pkg.duplicate().order(ByteOrder.BIG_ENDIAN);
        int n = b.limit();
        List<Command> leading = new ArrayList<>();
        int p = 0;
        // Leading commands: as long as they parse and are not the trailing run.
        while (p < n && WireIO.u8(b, p) == SectionType.COMMAND.code()) {
            int next = commandEnd(b, p, n, streamOffset);
            leading.add(command(b, p, streamOffset, blocks));
            p = next;
        }
        int trailStart = n;
        if (p < n) {
            trailStart = findTrailingCommands(b, p, n, streamOffset);
        }
        List<DeviceSection> sections = new ArrayList<>();
        while (p < trailStart) {
            int type = WireIO.u8(b, p);
            if (type != SectionType.FULL.code()) {
                throw new CodecException(Kind.MALFORMED, streamOffset + p, "package section type", WireIO.hex(type),
                        "0x04 (FULL)");
            }
            if (p + HEADER_FIXED > trailStart) {
                throw new CodecException(Kind.TRUNCATED, streamOffset + p, "package section header", trailStart - p + " bytes",
                        "at least " + HEADER_FIXED);
            }
            int id = b.getInt(p + 1);
            int len = WireIO.u8(b, p + 5);
            if (p + HEADER_FIXED + len > trailStart) {
                throw new CodecException(Kind.TRUNCATED, streamOffset + p + 5, "package section idstr length", len,
                        "<= " + (trailStart - p - HEADER_FIXED));
            }
            String idstr = WireIO.name(b, p + 6, len, streamOffset + p + 5, "package section idstr");
            int instance = b.getInt(p + 6 + len);
            int version = b.getInt(p + 10 + len);
            int body = p + HEADER_FIXED + len;
            int end = -1;
            for (int q = body; q + FOOTER <= trailStart; q++) {
                if (WireIO.u8(b, q) == SectionType.FOOTER.code() && b.getInt(q + 1) == id) {
                    int next = q + FOOTER;
                    if (next == trailStart || plausibleHeader(b, next, trailStart, id)) {
                        end = next;
                        break;
                    }
                }
            }
            if (end < 0) {
                sections.add(new DeviceSection(id, idstr, instance, version, p, trailStart - p, false));
                p = trailStart;
                break;
            }
            sections.add(new DeviceSection(id, idstr, instance, version, p, end - p, true));
            p = end;
        }
        List<Command> trailing = new ArrayList<>();
        while (p < n) {
            int next = commandEnd(b, p, n, streamOffset);
            trailing.add(command(b, p, streamOffset, blocks));
            p = next;
        }
        b.position(0).limit(n);
        return new PackageContents(streamOffset, leading, sections, trailing, b.slice());
    }

    private static boolean plausibleHeader(ByteBuffer b, int p, int limit, int previousId) {
        if (p + HEADER_FIXED > limit || WireIO.u8(b, p) != SectionType.FULL.code()) {
            return false;
        }
        int id = b.getInt(p + 1);
        int len = WireIO.u8(b, p + 5);
        if (id <= previousId || len == 0 || p + HEADER_FIXED + len + FOOTER > limit) {
            return false;
        }
        for (int i = 0; i < len; i++) {
            int c = WireIO.u8(b, p + 6 + i);
            if (c < 0x20 || c > 0x7e) {
                return false;
            }
        }
        return true;
    }

    /**
     * Earliest position >= from + 5, right after a footer marker, from which whole commands reach the end.
     * Linear: whether commands chain from t to the end is computed once for every t, from the end backwards
     * (a command at t chains iff it is table-valid and its end chains), so a hostile package full of
     * footer-like bytes costs O(n), not O(n^2).
     */
    private static int findTrailingCommands(ByteBuffer b, int from, int n, long streamOffset) {
        java.util.BitSet chains = new java.util.BitSet(n + 1);
        chains.set(n);
        for (int t = n - CommandCodec.HEADER; t >= from; t--) {
            if (WireIO.u8(b, t) != SectionType.COMMAND.code()) {
                continue;
            }
            CommandType type = CommandType.of(WireIO.u16(b, t + 1));
            int len = WireIO.u16(b, t + 3);
            int end = t + CommandCodec.HEADER + len;
            if (type != null && type != CommandType.PACKAGED && type.acceptsLength(len) && end <= n && chains.get(end)) {
                chains.set(t);
            }
        }
        for (int t = from + FOOTER; t < n; t++) {
            if (chains.get(t) && WireIO.u8(b, t - FOOTER) == SectionType.FOOTER.code()) {
                return t;
            }
        }
        return n;
    }

    private static int commandEnd(ByteBuffer b, int p, int n, long off) throws CodecException {
        if (p + CommandCodec.HEADER > n) {
            throw new CodecException(Kind.TRUNCATED, off + p, "package command header", (n - p) + " bytes", "5");
        }
        CommandType t = CommandCodec.checkHeader(b, p, off + p);
        int len = WireIO.u16(b, p + 3);
        if (p + CommandCodec.HEADER + len > n) {
            throw new CodecException(Kind.TRUNCATED, off + p + 3, "package command length", len,
                    "<= " + (n - p - CommandCodec.HEADER) + " (bytes left in the package)");
        }
        if (t == CommandType.PACKAGED) {
            throw new CodecException(Kind.MALFORMED, off + p + 1, "command", "PACKAGED", "no package inside a package");
        }
        return p + CommandCodec.HEADER + len;
    }

    private static Command command(ByteBuffer b, int p, long off, BlockValidator blocks) throws CodecException {
        CommandType t = CommandType.of(WireIO.u16(b, p + 1));
        int len = WireIO.u16(b, p + 3);
        return CommandCodec.parse(t, b, p + CommandCodec.HEADER, len, off + p + CommandCodec.HEADER, blocks);
    }
}
