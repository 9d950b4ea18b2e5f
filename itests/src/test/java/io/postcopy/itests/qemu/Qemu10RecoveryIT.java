package io.postcopy.itests.qemu;

import org.junit.jupiter.api.condition.EnabledIf;

/**
 * Issue 18: {@link QemuRecoveryIT} with QEMU 10.0 (default machine type) as the source: migrate-pause, our
 * {@code recover(bind)} (QEMU's migrate-recover), QEMU {@code migrate} with {@code "resume": true}; with and without
 * postcopy-preempt (10.0 opens its preempt socket again after the bitmaps, before POSTCOPY_RESUME) and over TLS.
 */
@EnabledIf(value = "io.postcopy.itests.qemu.QemuProcess$Qemu#v10Usable",
        disabledReason = "QEMU 10.0, root or /dev/shm missing: see the SKIPPING banner")
class Qemu10RecoveryIT extends QemuRecoveryIT {
    @Override
    QemuProcess.Qemu qemu() {
        return QemuProcess.Qemu.V10;
    }
}
