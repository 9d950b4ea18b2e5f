package io.postcopy.migration.internal.destination;

import io.postcopy.codec.RamBlockInfo;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads ahead to the MEM_SIZE block list to learn the blocks' page sizes before the codec decodes it.
 *
 * <p>QEMU writes a block's page size into MEM_SIZE only when it differs from the host's, and its receiver
 * knows from its own blocks whether the field is there; this destination creates its blocks from that very
 * list, so it infers it: after a block's used length comes either the next block's name length (a non-zero
 * byte), the record after MEM_SIZE (a header with flag bits below 4 KiB), or a page size (a power of two
 * above 4 KiB whose top byte is zero). The codec then decodes the list with these blocks as its validator,
 * so it still checks every field itself. Anything unexpected gives up and lets the codec report it.
 *
 * <p>Stateless: called by the stream thread ({@link StreamReader}) until its decoder exists.
 */
final class MemSizeProbe {
    /** More bytes are needed. */
    static final List<RamBlockInfo> NEED_MORE = null;

    private MemSizeProbe() {
    }

    private static final class More extends Exception {
        private static final long serialVersionUID = 1L;

        More() {
            super(null, null, false, false);
        }
    }

    private static final More MORE = new More();

    /**
     * @param in  the stream's first bytes, from position to limit (not moved)
     * @param end whether no more bytes will come
     * @return the block list, an empty list to give up (decode without a validator), or {@link #NEED_MORE}
     */
    static List<RamBlockInfo> probe(ByteBuffer in, boolean end) {
        ByteBuffer b = in.duplicate().order(ByteOrder.BIG_ENDIAN);
        try {
            return parse(b, b.position(), b.limit());
        } catch (More m) {
            return end || in.limit() == in.capacity() ? List.of() : NEED_MORE;
        } catch (RuntimeException e) {
            return List.of();
        }
    }

    private static void need(int p, int n, int limit) throws More {
        if (p + n > limit) throw MORE;
    }

    private static List<RamBlockInfo> parse(ByteBuffer b, int p, int limit) throws More {
        need(p, 8, limit);
        if (b.getInt(p) != io.postcopy.codec.Wire.MAGIC) return List.of();
        p += 8;
        for (;;) {
            need(p, 1, limit);
            int t = b.get(p) & 0xff;
            if (t == 0x07) {
                need(p, 5, limit);
                int len = b.getInt(p + 1);
                if (len < 0 || len > 256) return List.of();
                need(p, 5 + len, limit);
                p += 5 + len;
            } else if (t == 0x08) {
                need(p, 5, limit);
                int cmd = b.getShort(p + 1) & 0xffff, len = b.getShort(p + 3) & 0xffff;
                if (cmd == 7) return List.of();          // PACKAGED before the RAM setup: not ours to guess
                need(p, 5 + len, limit);
                p += 5 + len;
            } else if (t == 0x01) {
                need(p, 6, limit);
                int nlen = b.get(p + 5) & 0xff;
                need(p, 6 + nlen + 8, limit);
                if (nlen != 3 || b.get(p + 6) != 'r' || b.get(p + 7) != 'a' || b.get(p + 8) != 'm') return List.of();
                return memSize(b, p + 6 + nlen + 8, limit);
            } else {
                return List.of();
            }
        }
    }

    private static List<RamBlockInfo> memSize(ByteBuffer b, int p, int limit) throws More {
        need(p, 8, limit);
        long header = b.getLong(p);
        if ((header & 0xfff) != 0x04) return List.of();
        long total = header & ~0xfffL, sum = 0;
        int q = p + 8;
        List<RamBlockInfo> list = new ArrayList<>();
        while (sum < total) {
            if (list.size() == 256) return List.of();
            need(q, 1, limit);
            int nlen = b.get(q) & 0xff;
            need(q, 1 + nlen + 8 + 8, limit);
            byte[] name = new byte[nlen];
            b.get(q + 1, name);
            long used = b.getLong(q + 1 + nlen);
            q += 1 + nlen + 8;
            long v = b.getLong(q);
            long pageSize = 4096;
            if (v > 4096 && Long.bitCount(v) == 1 && (v >>> 56) == 0) {
                pageSize = v;
                q += 8;
            }
            if (used <= 0 || used > total - sum || used % pageSize != 0 || nlen == 0) return List.of();
            list.add(new RamBlockInfo(list.size(), new String(name, StandardCharsets.ISO_8859_1), used, pageSize));
            sum += used;
        }
        return list;
    }
}
