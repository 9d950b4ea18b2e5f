package io.postcopy.migration;

import io.postcopy.fault.MissingPages;
import io.postcopy.ramblock.RamBlock;
import java.util.List;
import java.util.Optional;
import org.osgi.annotation.versioning.ProviderType;

/** The destination side of a migration: one accepted connection. */
@ProviderType
public interface IncomingMigration extends Migration {
    /** The blocks created from the stream's block list (local names: prefix + wire name). */
    List<RamBlock> blocks();

    /** The pages that never arrived, once a postcopy migration ended without all of them. */
    Optional<MissingPages> missing();

    /** Device sections no handler took, by {@code idstr/instance}, as raw section bytes (header through footer). */
    List<OpaqueSection> opaqueSections();

    /**
     * QEMU's postcopy-preempt channel of this migration (a second connection from the source that carries
     * the requested pages), as "peer, N pages, M zero pages"; empty if the source opened none.
     */
    Optional<String> postcopyChannel();

    /**
     * QEMU's {@code migrate-recover}: a paused migration waits on a port of its own for its QEMU source to resume
     * ({@code migrate} with {@code "resume": true} to that port). The first connection there whose TLS handshake
     * (when the listener has TLS) succeeds and whose stream begins with QEMU's {@code RECV_BITMAP} becomes the
     * migration's connection, and, if the source had a postcopy-preempt channel, the connection after it that
     * channel; anything else is refused with one log line and the port keeps waiting. The port closes when the
     * migration leaves {@link MigrationState#POSTCOPY_PAUSED}. Our own source needs none of this: it resumes to
     * the listener, proving itself with the migration's token.
     *
     * @param bind where to listen; null: 127.0.0.1 on an ephemeral port. Off loopback the listener's TLS or
     *     insecure option must allow it.
     * @return the address listened on
     * @throws MigrationException when the migration is not paused or the address cannot be bound
     * @since 1.5
     */
    java.net.InetSocketAddress recover(java.net.InetSocketAddress bind);

    /** A device section kept as bytes. */
    record OpaqueSection(String idstr, int instanceId, int versionId, byte[] bytes) {}
}
