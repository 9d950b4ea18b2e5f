package io.postcopy.itests.qemu;

import org.junit.jupiter.api.condition.EnabledIf;

/** Issue 18: {@link QemuTlsIT} with QEMU 10.0 (default machine type) as the source. */
@EnabledIf(value = "io.postcopy.itests.qemu.QemuProcess$Qemu#v10Usable",
        disabledReason = "QEMU 10.0, root or /dev/shm missing: see the SKIPPING banner")
class Qemu10TlsIT extends QemuTlsIT {
    @Override
    QemuProcess.Qemu qemu() {
        return QemuProcess.Qemu.V10;
    }
}
