package io.postcopy.itests.qemu;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The two guests of the QEMU itests, as extra QEMU arguments.
 * <ol>
 * <li>{@link #firmware}: no disk, no kernel; a deterministic random blob loaded into guest RAM by the
 * loader device; the firmware idles.</li>
 * <li>{@link #linux}: Debian's own kernel ({@code linux-image-amd64}'s current dependency, fetched with
 * {@code apt-get download} and unpacked with {@code dpkg -x}, never the host's kernel) and an initramfs
 * built here from {@code busybox-static} and {@code dirtier.c} (gcc -static): it fills memory with a
 * pattern and rewrites random pages forever. Everything is built once into {@code target/qemu-guest/} and
 * reused while present.</li>
 * </ol>
 */
public final class QemuGuests {
    /** Guest-physical address of the firmware guest's blob (inside pc.ram, above the BIOS/VGA holes). */
    public static final long BLOB_ADDRESS = 0x1000000;
    /** What the Linux guest prints once its memory is filled and it starts dirtying. */
    public static final String LINUX_READY = "DIRTIER READY";

    private QemuGuests() {
    }

    /** A guest: its QEMU arguments, and a line to wait for on the serial console (or null). */
    public record Guest(String name, List<String> args, String readyText) {
    }

    /**
     * Firmware-only guest: {@code blobBytes} of random data (SplittableRandom(seed)) loaded at
     * {@link #BLOB_ADDRESS} with {@code -device loader,...,force-raw=on}.
     */
    public static Guest firmware(Path cache, long seed, int blobBytes) throws IOException {
        Path cacheDir = cache.toAbsolutePath();
        Files.createDirectories(cacheDir);
        Path blob = cacheDir.resolve("blob-" + Long.toHexString(seed) + "-" + blobBytes + ".bin");
        if (!Files.exists(blob) || Files.size(blob) != blobBytes) {
            byte[] b = blobBytes(seed, blobBytes);
            Path tmp = Files.createTempFile(cacheDir, "blob", ".tmp");
            Files.write(tmp, b);
            Files.move(tmp, blob, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        return new Guest("firmware", List.of("-device", "loader,file=" + blob + ",addr=0x" + Long.toHexString(BLOB_ADDRESS)
                + ",force-raw=on"), null);
    }

    /** The blob's bytes: deterministic in {@code seed}. */
    public static byte[] blobBytes(long seed, int length) {
        byte[] b = new byte[length];
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < length; i += 8) {
            long v = r.nextLong();
            for (int k = 0; k < 8 && i + k < length; k++) {
                b[i + k] = (byte) (v >>> (8 * k));
            }
        }
        return b;
    }

    /**
     * Linux guest dirtying {@code dirtyMib} MiB; {@code batch} pages rewritten between 1 ms sleeps.
     * Builds (or reuses) the kernel and the initramfs in {@code cacheDir}.
     */
    public static Guest linux(Path cache, int dirtyMib, int batch) throws IOException, InterruptedException {
        Path cacheDir = cache.toAbsolutePath();
        Files.createDirectories(cacheDir);
        Path kernel = kernel(cacheDir);
        Path initrd = initramfs(cacheDir);
        return new Guest("linux", List.of("-kernel", kernel.toString(), "-initrd", initrd.toString(),
                "-append", "console=ttyS0 quiet dirtier.mib=" + dirtyMib + " dirtier.batch=" + batch), LINUX_READY);
    }

    // ---------------------------------------------------------------- kernel

    /** {@code -Dqemu.kernel=PATH} uses that bzImage; otherwise Debian's current amd64 kernel package. */
    static Path kernel(Path cacheDir) throws IOException, InterruptedException {
        String given = System.getProperty("qemu.kernel");
        if (given != null && !given.isBlank()) {
            return Path.of(given);
        }
        Path vmlinuz = cacheDir.resolve("vmlinuz");
        if (Files.exists(vmlinuz)) {
            return vmlinuz;
        }
        String pkg = System.getProperty("qemu.kernel.package");
        if (pkg == null || pkg.isBlank()) {
            // the package the metapackage points at, e.g. linux-image-6.1.0-56-amd64 (never the host's kernel)
            String deps = run(cacheDir, 60, "apt-cache", "depends", "linux-image-amd64");
            Matcher m = Pattern.compile("Depends: (linux-image-[0-9][^\\s]*-amd64)").matcher(deps);
            if (!m.find()) {
                throw new IOException("cannot find the kernel package of linux-image-amd64 (apt-get update?):\n" + deps);
            }
            pkg = m.group(1);
        }
        String kernelPkg = pkg;
        Path unpacked = downloadAndUnpack(cacheDir, kernelPkg);
        Path found;
        try (Stream<Path> s = Files.list(unpacked.resolve("boot"))) {
            found = s.filter(p -> p.getFileName().toString().startsWith("vmlinuz-")).findFirst()
                    .orElseThrow(() -> new IOException("no boot/vmlinuz-* in " + kernelPkg));
        }
        Files.copy(found, cacheDir.resolve("vmlinuz.tmp"), StandardCopyOption.REPLACE_EXISTING);
        Files.move(cacheDir.resolve("vmlinuz.tmp"), vmlinuz, StandardCopyOption.ATOMIC_MOVE);
        Files.writeString(cacheDir.resolve("vmlinuz.package"), pkg + "\n");
        // the package's modules are ~400 MB and the .deb ~70 MB: only the bzImage is kept
        run(cacheDir, 300, "rm", "-rf", unpacked.toString(), cacheDir.resolve("deb").toString());
        return vmlinuz;
    }

    /** {@code apt-get download PKG} into {@code cacheDir/deb}, {@code dpkg -x} into {@code cacheDir/PKG}. */
    static Path downloadAndUnpack(Path cacheDir, String pkg) throws IOException, InterruptedException {
        Path debDir = cacheDir.resolve("deb");
        Files.createDirectories(debDir);
        Path out = cacheDir.resolve(pkg);
        if (Files.isDirectory(out)) {
            return out;
        }
        run(debDir, 600, "apt-get", "download", pkg);
        Path deb;
        try (Stream<Path> s = Files.list(debDir)) {
            deb = s.filter(p -> p.getFileName().toString().startsWith(pkg + "_") && p.toString().endsWith(".deb"))
                    .findFirst().orElseThrow(() -> new IOException("apt-get download " + pkg + " left no .deb in " + debDir));
        }
        Path tmp = cacheDir.resolve(pkg + ".tmp");
        run(cacheDir, 300, "rm", "-rf", tmp.toString());
        run(cacheDir, 300, "dpkg", "-x", deb.toString(), tmp.toString());
        Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
        return out;
    }

    // ---------------------------------------------------------------- initramfs

    static byte[] resource(String name) throws IOException {
        try (InputStream in = QemuGuests.class.getResourceAsStream("/qemu/" + name)) {
            if (in == null) {
                throw new IOException("missing test resource qemu/" + name);
            }
            return in.readAllBytes();
        }
    }

    /** newc cpio: /init, /bin/busybox, /bin/dirtier, /dev/console, /proc; cached by the sources' hash. */
    static Path initramfs(Path cacheDir) throws IOException, InterruptedException {
        byte[] init = resource("init");
        byte[] source = resource("dirtier.c");
        String key;
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(init);
            sha.update(source);
            key = HexFormat.of().formatHex(sha.digest()).substring(0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        Path cpio = cacheDir.resolve("initramfs-" + key + ".cpio");
        if (Files.exists(cpio)) {
            return cpio;
        }
        Path c = cacheDir.resolve("dirtier.c");
        Files.write(c, source);
        Path dirtier = cacheDir.resolve("dirtier");
        run(cacheDir, 300, "gcc", "-static", "-O2", "-o", dirtier.toString(), c.toString());
        Path busybox = busybox(cacheDir);
        Path tmp = cacheDir.resolve("initramfs.tmp");
        try (OutputStream out = Files.newOutputStream(tmp)) {
            Cpio w = new Cpio(out);
            w.dir("bin");
            w.dir("dev");
            w.dir("proc");
            w.dir("sys");
            w.node("dev/console", 0020600, 5, 1);
            w.file("init", 0100755, init);
            w.file("bin/busybox", 0100755, Files.readAllBytes(busybox));
            w.file("bin/dirtier", 0100755, Files.readAllBytes(dirtier));
            w.trailer();
        }
        Files.move(tmp, cpio, StandardCopyOption.ATOMIC_MOVE);
        return cpio;
    }

    /** The installed busybox-static's {@code /bin/busybox}, or the package unpacked into the cache. */
    static Path busybox(Path cacheDir) throws IOException, InterruptedException {
        String status;
        try {
            status = run(cacheDir, 60, "dpkg-query", "-W", "-f=${Status}", "busybox-static");
        } catch (IOException notInstalled) {
            status = "";
        }
        if (status.contains("install ok installed") && Files.isExecutable(Path.of("/bin/busybox"))) {
            return Path.of("/bin/busybox");
        }
        Path bb = downloadAndUnpack(cacheDir, "busybox-static").resolve("bin/busybox");
        if (!Files.exists(bb)) {
            throw new IOException("busybox-static has no bin/busybox: " + bb);
        }
        return bb;
    }

    /** Minimal cpio "newc" writer (what the kernel unpacks as initramfs). */
    static final class Cpio {
        private final OutputStream out;
        private long written;
        private int ino = 1;

        Cpio(OutputStream out) {
            this.out = out;
        }

        void dir(String name) throws IOException {
            entry(name, 0040755, 0, 0, new byte[0]);
        }

        void node(String name, int mode, int major, int minor) throws IOException {
            entry(name, mode, major, minor, new byte[0]);
        }

        void file(String name, int mode, byte[] data) throws IOException {
            entry(name, mode, 0, 0, data);
        }

        void trailer() throws IOException {
            entry("TRAILER!!!", 0, 0, 0, new byte[0]);
        }

        private void entry(String name, int mode, int rdevMajor, int rdevMinor, byte[] data) throws IOException {
            byte[] n = (name + "\0").getBytes(StandardCharsets.US_ASCII);
            StringBuilder h = new StringBuilder("070701");
            long[] fields = {ino++, mode, 0, 0, (mode & 0040000) != 0 ? 2 : 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, n.length, 0};
            for (long f : fields) {
                h.append(String.format("%08x", f));
            }
            write(h.toString().getBytes(StandardCharsets.US_ASCII));
            write(n);
            pad();
            write(data);
            pad();
        }

        private void write(byte[] b) throws IOException {
            out.write(b);
            written += b.length;
        }

        private void pad() throws IOException {
            while (written % 4 != 0) {
                out.write(0);
                written++;
            }
        }
    }

    // ---------------------------------------------------------------- processes

    /** Runs a command in {@code dir}; returns its output, or throws with the output on failure. */
    static String run(Path dir, int timeoutSeconds, String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Thread t = new Thread(() -> {
            try (InputStream in = p.getInputStream()) {
                in.transferTo(buf);
            } catch (IOException ignored) {
                // process gone
            }
        });
        t.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("timed out after " + timeoutSeconds + " s: " + String.join(" ", cmd));
        }
        t.join(5000);
        String out = buf.toString(StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new IOException("exit " + p.exitValue() + ": " + String.join(" ", cmd) + "\n" + out);
        }
        return out;
    }
}
