package io.postcopy.itests.qemu;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * QEMU 7.2 as the destination: the same machine and RAM size as the source, {@code -incoming} on a free
 * port, started with {@code -S} so that it stays paused after the switch: the guest must not write the RAM
 * we verify (its RAM must end up equal to the paused source's). Page requests are still produced: during
 * postcopy, {@link #touchDuringPostcopy} reads a range of guest memory with {@code pmemsave} (to /dev/null),
 * which faults on every page not yet arrived, exactly as a running vCPU would.
 */
public final class QemuDestination implements MigrationDestination {
    private final QemuProcess qemu;
    private final int port;
    private final long touchAddress;
    private final long touchLength;

    /**
     * @param touchAddress guest-physical start of the range read during postcopy
     * @param touchLength  its length (0: no reads, no requests)
     */
    public QemuDestination(String name, Path workDir, long ramBytes, List<String> guestArgs, long touchAddress, long touchLength)
            throws IOException, InterruptedException {
        this.port = freePort();
        this.touchAddress = touchAddress;
        this.touchLength = touchLength;
        this.qemu = QemuProcess.start(new QemuProcess.Config(name, workDir).ram(ramBytes).incoming(port).paused(true)
                .args(guestArgs));
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public QemuProcess qemu() {
        return qemu;
    }

    @Override
    public String name() {
        return qemu.name();
    }

    @Override
    public int port() {
        return port;
    }

    @Override
    public void prepare() throws IOException {
        qemu.qmp().migrateSetCapabilities(PostcopyMigration.CAPABILITIES);
    }

    @Override
    public void touchDuringPostcopy() throws IOException {
        if (touchLength == 0) {
            return;
        }
        // Only once this side is in postcopy itself (LISTEN processed: userfaultfd registered). Reading a hole
        // of the shared-memory file earlier makes the kernel allocate a page there, and QEMU's later
        // UFFDIO_ZEROPAGE/COPY of that page fails with EEXIST ("postcopy_place_page_zero: File exists"),
        // which pauses the migration (seen here when the source was already postcopy-active).
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            String st = String.valueOf(qemu.qmp().queryMigrate().get("status"));
            if ("postcopy-active".equals(st)) {
                break;
            }
            if ("completed".equals(st) || "failed".equals(st) || "postcopy-paused".equals(st)) {
                return; // too late (or broken): nothing to touch
            }
            if (System.nanoTime() > deadline) {
                throw new IOException(name() + ": not postcopy-active within 30 s (status " + st + ")");
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }
        qemu.qmp().pmemsave(touchAddress, touchLength, Path.of("/dev/null"), Duration.ofSeconds(120));
    }

    @Override
    public void awaitCompleted(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        String status = null;
        while (System.nanoTime() < deadline) {
            Map<String, Object> m = qemu.qmp().queryMigrate();
            status = String.valueOf(m.get("status"));
            if ("completed".equals(status)) {
                return;
            }
            if ("failed".equals(status)) {
                throw new IOException(name() + ": incoming migration failed: " + m + "; see " + qemu.workDir());
            }
            Thread.sleep(20);
        }
        throw new IOException(name() + ": incoming migration not completed within " + timeout + " (status " + status + ")");
    }

    @Override
    public byte[] ramDigest(String block) throws IOException {
        if (!"pc.ram".equals(block)) {
            throw new IllegalArgumentException("only pc.ram is file-backed here, not " + block);
        }
        return PageDigest.ofFile(qemu.ramFile(), 0, qemu.ramBytes());
    }

    @Override
    public String report() throws IOException {
        return "destination run state " + qemu.qmp().runState();
    }

    @Override
    public void close() {
        qemu.close();
    }
}
