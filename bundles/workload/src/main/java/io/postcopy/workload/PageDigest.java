package io.postcopy.workload;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * The SHA-256 of every 4 KiB page of a block's used length, in page order, 32 bytes per page: the format of
 * the codec inspector's {@code --ram-digest} files, so a block on either side of a migration can be compared
 * with a recorded stream. Pages are copied out with a native {@code memcpy} before hashing (the block may be
 * registered with userfaultfd); one buffer and one digest serve the whole block.
 */
public final class PageDigest {
    /** Bytes of digest per page. */
    public static final int DIGEST_BYTES = 32;
    private static final int PAGE = Workload.PAGE_SIZE;
    private static final int CHUNK_PAGES = 16;

    private PageDigest() {}

    /** The per-page digests of the block's used length. Call it while nothing writes the block. */
    public static byte[] of(RamBlock block) {
        long pages = block.usedLength() / PAGE;
        if (pages > Integer.MAX_VALUE / DIGEST_BYTES)
            throw new IllegalArgumentException("block " + block.idstr() + ": " + pages + " pages exceed one array");
        byte[] out = new byte[(int) pages * DIGEST_BYTES];
        MessageDigest sha = sha256();
        byte[] page = new byte[PAGE];
        long host = block.hostAddress();
        long buf = NativeMemory.allocate((long) CHUNK_PAGES * PAGE);
        try (io.postcopy.workload.internal.Scan scan = new io.postcopy.workload.internal.Scan(block, "digest")) {
            for (long p = 0; p < pages; p += CHUNK_PAGES) {
                scan.check();
                int n = (int) Math.min(CHUNK_PAGES, pages - p);
                NativeMemory.nativeCopy(host + p * PAGE, buf, (long) n * PAGE);
                scan.check();
                for (int i = 0; i < n; i++) {
                    NativeMemory.get(buf + (long) i * PAGE, page, 0, PAGE);
                    sha.update(page, 0, PAGE);
                    sha.digest(out, (int) (p + i) * DIGEST_BYTES, DIGEST_BYTES);
                }
            }
        } catch (DigestException e) {
            throw new IllegalStateException(e);
        } finally {
            NativeMemory.free(buf);
        }
        return out;
    }

    /** Writes {@link #of(RamBlock)} to {@code file}. */
    public static void write(RamBlock block, Path file) throws IOException {
        Files.write(file, of(block));
    }

    /** Reads a digest file, checking that it holds whole 32-byte entries. */
    public static byte[] read(Path file) throws IOException {
        byte[] d = Files.readAllBytes(file);
        checkLength(d, file.toString());
        return d;
    }

    /** Compares two digests page by page; pages only one side has count as mismatched. */
    public static DigestComparison compare(byte[] a, byte[] b) {
        checkLength(a, "a");
        checkLength(b, "b");
        long pa = a.length / DIGEST_BYTES, pb = b.length / DIGEST_BYTES, common = Math.min(pa, pb);
        long mismatched = 0, first = -1;
        for (int p = 0; p < common; p++) {
            int off = p * DIGEST_BYTES;
            if (!Arrays.equals(a, off, off + DIGEST_BYTES, b, off, off + DIGEST_BYTES) && mismatched++ == 0) first = p;
        }
        long extra = Math.max(pa, pb) - common;
        if (extra > 0 && first < 0) first = common;
        return new DigestComparison(Math.max(pa, pb), mismatched + extra, first);
    }

    private static void checkLength(byte[] d, String what) {
        if (d.length % DIGEST_BYTES != 0)
            throw new IllegalArgumentException("digest " + what + " is " + d.length + " bytes, not a multiple of "
                    + DIGEST_BYTES);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is mandatory in every Java platform", e);
        }
    }
}
