package io.postcopy.itests.qemu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Per-page SHA-256 of RAM images: 32 bytes per 4 KiB page, in page order — the format of
 * {@code postcopy:digest} and of the codec inspector's {@code --ram-digest}. A short last page is
 * hashed as if padded with zeros.
 */
public final class PageDigest {
    public static final int PAGE = 4096;
    public static final int HASH = 32;

    private PageDigest() {
    }

    /** Hashes {@code length} bytes of {@code file} from {@code offset} (bytes past the file's end read as 0). */
    public static byte[] ofFile(Path file, long offset, long length) throws IOException {
        long pages = (length + PAGE - 1) / PAGE;
        if (pages * HASH > Integer.MAX_VALUE) {
            throw new IOException("too large to digest in memory: " + length);
        }
        byte[] out = new byte[(int) (pages * HASH)];
        MessageDigest sha = sha256();
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        byte[] page = new byte[PAGE];
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long pos = offset;
            long end = offset + length;
            int p = 0;
            while (pos < end) {
                buf.clear();
                int want = (int) Math.min(buf.capacity(), end - pos);
                buf.limit(want);
                int n = 0;
                while (buf.hasRemaining()) {
                    int r = ch.read(buf, pos + buf.position());
                    if (r < 0) {
                        break;
                    }
                    n += r;
                }
                // the rest of a short read (past the file's end) stays zero
                java.util.Arrays.fill(buf.array(), n, want, (byte) 0);
                for (int k = 0; k < want; k += PAGE) {
                    int len = Math.min(PAGE, want - k);
                    System.arraycopy(buf.array(), k, page, 0, len);
                    if (len < PAGE) {
                        java.util.Arrays.fill(page, len, PAGE, (byte) 0);
                    }
                    sha.update(page);
                    try {
                        sha.digest(out, p * HASH, HASH);
                    } catch (java.security.DigestException e) {
                        throw new IllegalStateException(e);
                    }
                    p++;
                }
                pos += want;
            }
        }
        return out;
    }

    public static byte[] ofFile(Path file) throws IOException {
        return ofFile(file, 0, Files.size(file));
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The hash of one page of {@code data} (shorter data padded with zeros). */
    public static byte[] ofPage(byte[] data) {
        byte[] p = java.util.Arrays.copyOf(data, PAGE);
        return sha256().digest(p);
    }

    /** Result of a page-by-page comparison. */
    public record Comparison(String what, long pagesCompared, long pagesSkipped, long mismatches, long firstMismatch,
                             List<Long> someMismatches) {
        public boolean equal() {
            return mismatches == 0;
        }

        @Override
        public String toString() {
            return what + ": " + pagesCompared + " pages compared" + (pagesSkipped > 0 ? " (" + pagesSkipped + " skipped)" : "")
                    + ", " + mismatches + " mismatched"
                    + (mismatches > 0 ? ", first at page " + firstMismatch + " (offset 0x" + Long.toHexString(firstMismatch * PAGE)
                    + "), e.g. pages " + someMismatches : "");
        }
    }

    /** Compares two digests of the same length page by page; pages for which {@code skip} says so are skipped. */
    public static Comparison compare(String what, byte[] expected, byte[] actual, java.util.function.LongPredicate skip) {
        if (expected.length != actual.length) {
            throw new IllegalArgumentException(what + ": digests of different sizes: " + expected.length / HASH + " vs "
                    + actual.length / HASH + " pages");
        }
        long pages = expected.length / HASH;
        long compared = 0;
        long skipped = 0;
        long mismatches = 0;
        long first = -1;
        List<Long> some = new ArrayList<>();
        for (long i = 0; i < pages; i++) {
            if (skip != null && skip.test(i)) {
                skipped++;
                continue;
            }
            compared++;
            int o = (int) (i * HASH);
            if (!java.util.Arrays.equals(expected, o, o + HASH, actual, o, o + HASH)) {
                if (mismatches++ == 0) {
                    first = i;
                }
                if (some.size() < 10) {
                    some.add(i);
                }
            }
        }
        return new Comparison(what, compared, skipped, mismatches, first, some);
    }

    public static Comparison compare(String what, byte[] expected, byte[] actual) {
        return compare(what, expected, actual, null);
    }

    public static String hex(byte[] digest, long page) {
        return HexFormat.of().formatHex(digest, (int) (page * HASH), (int) (page * HASH + HASH));
    }
}
