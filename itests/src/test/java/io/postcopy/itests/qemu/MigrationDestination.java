package io.postcopy.itests.qemu;

import java.io.IOException;
import java.time.Duration;

/**
 * The receiving side of a migration driven by {@link PostcopyMigration}. Implemented here by
 * {@link QemuDestination} (QEMU 7.2 itself, {@code -incoming}); our own destination implements the same
 * five methods ({@code postcopy:listen PORT}, {@code postcopy:status}, {@code postcopy:digest pc.ram FILE}).
 */
public interface MigrationDestination extends AutoCloseable {

    String name();

    /** The TCP port on 127.0.0.1 where the source must connect (the proxy forwards there). */
    int port();

    /** Called before the source's {@code migrate}: enable what the destination needs (postcopy-ram, return-path). */
    void prepare() throws IOException;

    /**
     * Called once the source reports {@code postcopy-active}: touch guest memory on the destination so that
     * page faults become page requests to the source (the stand-in for a running guest or workload that
     * must not write the RAM being verified). May block until those pages arrived; runs on its own thread.
     */
    default void touchDuringPostcopy() throws IOException {
    }

    /** Waits until the destination has received the whole migration and says so. */
    void awaitCompleted(Duration timeout) throws IOException, InterruptedException;

    /** Per-page SHA-256 (32 bytes per 4 KiB page, page order) of the named RAM block as the destination holds it. */
    byte[] ramDigest(String block) throws IOException, InterruptedException;

    /** Extra figures to print (e.g. the destination's own request counter); may be empty. */
    default String report() throws IOException {
        return "";
    }

    @Override
    void close();
}
