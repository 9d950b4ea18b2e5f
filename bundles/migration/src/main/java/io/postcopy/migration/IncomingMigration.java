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

    /** A device section kept as bytes. */
    record OpaqueSection(String idstr, int instanceId, int versionId, byte[] bytes) {}
}
