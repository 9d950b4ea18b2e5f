package io.postcopy.migration;

import java.util.Objects;

/**
 * Options of the migrations a listener accepts. Start from {@link #defaults()}.
 *
 * @param blockPrefix        local block name = prefix + the wire (source) name, so one registry can hold the
 *                           source's and the destination's blocks; the wire always carries the source's names
 * @param guest              resumed at {@code POSTCOPY_RUN} (or at the end of a precopy-only stream); paused
 *                           again if the migration fails after it was resumed
 * @param stagingBatchSize   bytes of contiguous pages gathered before one placement (4096 = place each page
 *                           straight from the receive buffer); 0 = the service's default
 * @param maxPackageSize     cap on a PACKAGED blob; 0 = the service's default
 * @param removeBlocksOnFailure whether a failed or cancelled migration removes the blocks it created
 * @param qemuPreempt        QEMU's rule for its postcopy-preempt channel: see {@link #withQemuPreempt}
 * @param tls                every connection runs over TLS, the source authenticated by its certificate; null:
 *                           plain TCP (see {@link MigrationService#listen} for what that allows)
 * @param insecure           allows a listener on an address other than loopback without TLS: anyone who reaches
 *                           it can migrate into this host
 * @param switchoverAck      QEMU 8.1+'s {@code switchover-ack} capability: see {@link #withSwitchoverAck}
 */
public record IncomingOptions(String blockPrefix, GuestControl guest, int stagingBatchSize, int maxPackageSize,
                              boolean removeBlocksOnFailure, boolean qemuPreempt, TlsOptions tls, boolean insecure,
                              boolean switchoverAck) {
    public IncomingOptions {
        Objects.requireNonNull(blockPrefix, "blockPrefix");
        Objects.requireNonNull(guest, "guest");
        if (stagingBatchSize != 0 && (stagingBatchSize < 4096 || stagingBatchSize % 4096 != 0))
            throw new IllegalArgumentException("stagingBatchSize must be 0 or a multiple of 4096: " + stagingBatchSize);
        if (maxPackageSize < 0) throw new IllegalArgumentException("maxPackageSize must be >= 0");
    }

    /** The options as they were before {@code switchoverAck} (package version 1.5): switchover-ack off. */
    public IncomingOptions(String blockPrefix, GuestControl guest, int stagingBatchSize, int maxPackageSize,
                           boolean removeBlocksOnFailure, boolean qemuPreempt, TlsOptions tls, boolean insecure) {
        this(blockPrefix, guest, stagingBatchSize, maxPackageSize, removeBlocksOnFailure, qemuPreempt, tls, insecure, false);
    }

    public static IncomingOptions defaults() {
        return new IncomingOptions("", GuestControl.NONE, 0, 0, true, false, null, false, false);
    }

    public IncomingOptions withBlockPrefix(String prefix) {
        return new IncomingOptions(prefix, guest, stagingBatchSize, maxPackageSize, removeBlocksOnFailure, qemuPreempt, tls, insecure, switchoverAck);
    }

    public IncomingOptions withGuest(GuestControl g) {
        return new IncomingOptions(blockPrefix, g, stagingBatchSize, maxPackageSize, removeBlocksOnFailure, qemuPreempt, tls, insecure, switchoverAck);
    }

    /** Runs {@code onRun} when the guest may run here (nothing to pause on failure). */
    public IncomingOptions onRun(Runnable onRun) {
        return withGuest(GuestControl.of(() -> { }, onRun));
    }

    public IncomingOptions withStagingBatchSize(int bytes) {
        return new IncomingOptions(blockPrefix, guest, bytes, maxPackageSize, removeBlocksOnFailure, qemuPreempt, tls, insecure, switchoverAck);
    }

    public IncomingOptions withMaxPackageSize(int bytes) {
        return new IncomingOptions(blockPrefix, guest, stagingBatchSize, bytes, removeBlocksOnFailure, qemuPreempt, tls, insecure, switchoverAck);
    }

    public IncomingOptions withRemoveBlocksOnFailure(boolean remove) {
        return new IncomingOptions(blockPrefix, guest, stagingBatchSize, maxPackageSize, remove, qemuPreempt, tls, insecure, switchoverAck);
    }

    /**
     * A listener for QEMU sources with the postcopy-preempt capability (QEMU's own rule, as in its
     * {@code migration_ioc_process_incoming}): it serves one migration at a time, and the connection accepted
     * right after a migration's main connection is that migration's preempt channel; QEMU's channel carries no
     * proof of which migration it belongs to. Set it as QEMU's destination sets the capability. Our own source
     * needs none of this: its channel proves itself with the migration's token on any listener.
     */
    public IncomingOptions withQemuPreempt(boolean on) {
        return new IncomingOptions(blockPrefix, guest, stagingBatchSize, maxPackageSize, removeBlocksOnFailure, on, tls, insecure, switchoverAck);
    }

    /** Every connection over TLS with these credentials (null: plain TCP). */
    public IncomingOptions withTls(TlsOptions t) {
        return new IncomingOptions(blockPrefix, guest, stagingBatchSize, maxPackageSize, removeBlocksOnFailure, qemuPreempt, t, insecure, switchoverAck);
    }

    /**
     * QEMU 8.1+'s {@code switchover-ack} capability, set on the source: such a source does not switch over (neither
     * ends precopy nor starts postcopy) before the destination sends SWITCHOVER_ACK on the return path. Nothing in
     * the stream says the source has it on, so, as with QEMU's own destination, set it here when it is set there: we
     * then send SWITCHOVER_ACK right after OPEN_RETURN_PATH (no device here needs to hold the switchover back).
     * Never for a source without the capability: QEMU 7.2 fails on the unknown return-path message 7.
     */
    public IncomingOptions withSwitchoverAck(boolean on) {
        return new IncomingOptions(blockPrefix, guest, stagingBatchSize, maxPackageSize, removeBlocksOnFailure, qemuPreempt, tls, insecure, on);
    }

    /** Plain TCP on an address other than loopback (refused otherwise): say so explicitly. */
    public IncomingOptions withInsecure(boolean on) {
        return new IncomingOptions(blockPrefix, guest, stagingBatchSize, maxPackageSize, removeBlocksOnFailure, qemuPreempt, tls, on, switchoverAck);
    }
}
