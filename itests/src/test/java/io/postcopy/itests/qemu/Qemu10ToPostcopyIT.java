package io.postcopy.itests.qemu;

import org.junit.jupiter.api.condition.EnabledIf;

/**
 * Issue 18: {@link QemuToPostcopyIT} with Debian's QEMU 10.0 (bookworm-backports, unpacked beside the system's 7.2)
 * as the source, with its DEFAULT machine type (pc = pc-i440fx-10.0): it sends MIG_CMD_SWITCHOVER_START (command 11)
 * at postcopy start, opens its preempt channel only in postcopy_start and ends it without EOS. The same guests,
 * modes and checks as with 7.2; compress is gone from QEMU 10.0 (removed in 9.1), so that refusal is not run here.
 */
@EnabledIf(value = "io.postcopy.itests.qemu.QemuProcess$Qemu#v10Usable",
        disabledReason = "QEMU 10.0, root or /dev/shm missing: see the SKIPPING banner")
class Qemu10ToPostcopyIT extends QemuToPostcopyIT {
    @Override
    QemuProcess.Qemu qemu() {
        return QemuProcess.Qemu.V10;
    }

    /**
     * QEMU 10.0 at unlimited bandwidth finished precopy of the dirtying Linux guest in one pass (768 ms, no XBZRLE
     * record sent: the refusal named the precopy-only end instead); at 128 MiB/s it keeps iterating.
     */
    @Override
    java.util.Map<String, Object> xbzrleParameters() {
        return java.util.Map.of("downtime-limit", 1L, "max-bandwidth", 128L << 20);
    }

    /** Not a test here: QEMU 10.0 refuses multifd with postcopy-ram itself ("Postcopy is not yet compatible with multifd"; allowed from 10.1). */
    @Override
    void multifdIsRefusedAndQemuFails() {
    }

    /** Not a test here: QEMU 10.0 has no compress capability any more (removed in 9.1). */
    @Override
    void compressIsRefusedAndQemuFails() {
    }
}
