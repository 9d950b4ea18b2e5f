package io.postcopy.uffd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Our struct offsets and ioctl numbers against the kernel's own header, compiled with gcc. The header
 * installed here is older than the kernel, so UFFDIO_MOVE and PAGEMAP_SCAN are checked against their
 * struct layouts written out from the kernel's uapi (and proven by the behavioural tests that use them).
 */
class AbiLayoutTest {
    static final String PROGRAM = String.join("\n",
            "#include <stdio.h>", "#include <stddef.h>", "#include <sys/ioctl.h>", "#include <linux/types.h>", "#include <linux/userfaultfd.h>",
            "struct move_arg { __u64 dst, src, len, mode; __s64 move; };",
            "struct scan_arg { __u64 size, flags, start, end, walk_end, vec, vec_len, max_pages, inv, mask, anyof, ret; };",
            "#define P(n, v) printf(\"%s=%llu\\n\", n, (unsigned long long)(v))",
            "int main(void) {",
            "P(\"UFFD_API\", UFFD_API);",
            "P(\"UFFDIO_API\", UFFDIO_API); P(\"UFFDIO_REGISTER\", UFFDIO_REGISTER); P(\"UFFDIO_UNREGISTER\", UFFDIO_UNREGISTER);",
            "P(\"UFFDIO_WAKE\", UFFDIO_WAKE); P(\"UFFDIO_COPY\", UFFDIO_COPY); P(\"UFFDIO_ZEROPAGE\", UFFDIO_ZEROPAGE);",
            "P(\"UFFDIO_WRITEPROTECT\", UFFDIO_WRITEPROTECT); P(\"UFFDIO_CONTINUE\", UFFDIO_CONTINUE);",
            "P(\"UFFDIO_MOVE\", _IOWR(UFFDIO, 0x05, struct move_arg)); P(\"PAGEMAP_SCAN\", _IOWR('f', 16, struct scan_arg));",
            "P(\"sizeof uffd_msg\", sizeof(struct uffd_msg));",
            "P(\"msg.event\", offsetof(struct uffd_msg, event));",
            "P(\"msg.flags\", offsetof(struct uffd_msg, arg.pagefault.flags));",
            "P(\"msg.address\", offsetof(struct uffd_msg, arg.pagefault.address));",
            "P(\"msg.ptid\", offsetof(struct uffd_msg, arg.pagefault.feat.ptid));",
            "P(\"msg.fork.ufd\", offsetof(struct uffd_msg, arg.fork.ufd));",
            "P(\"msg.remap.from\", offsetof(struct uffd_msg, arg.remap.from));",
            "P(\"msg.remap.to\", offsetof(struct uffd_msg, arg.remap.to));",
            "P(\"msg.remap.len\", offsetof(struct uffd_msg, arg.remap.len));",
            "P(\"msg.remove.start\", offsetof(struct uffd_msg, arg.remove.start));",
            "P(\"msg.remove.end\", offsetof(struct uffd_msg, arg.remove.end));",
            "P(\"copy.copy\", offsetof(struct uffdio_copy, copy)); P(\"zeropage.zeropage\", offsetof(struct uffdio_zeropage, zeropage));",
            "P(\"continue.mapped\", offsetof(struct uffdio_continue, mapped)); P(\"register.ioctls\", offsetof(struct uffdio_register, ioctls));",
            "P(\"api.ioctls\", offsetof(struct uffdio_api, ioctls));",
            "P(\"EVENT_PAGEFAULT\", UFFD_EVENT_PAGEFAULT); P(\"EVENT_FORK\", UFFD_EVENT_FORK); P(\"EVENT_REMAP\", UFFD_EVENT_REMAP);",
            "P(\"EVENT_REMOVE\", UFFD_EVENT_REMOVE); P(\"EVENT_UNMAP\", UFFD_EVENT_UNMAP);",
            "P(\"FEATURE_THREAD_ID\", UFFD_FEATURE_THREAD_ID); P(\"FEATURE_MINOR_SHMEM\", UFFD_FEATURE_MINOR_SHMEM);",
            "P(\"FEATURE_WP_HUGETLBFS_SHMEM\", UFFD_FEATURE_WP_HUGETLBFS_SHMEM);",
            "return 0; }", "");

    static final Map<String, Long> kernel = new HashMap<>();

    @BeforeAll
    static void compile() throws Exception {
        Path dir = Files.createTempDirectory("abi");
        Path c = dir.resolve("abi.c"), exe = dir.resolve("abi");
        Files.writeString(c, PROGRAM);
        boolean tools = Files.exists(Path.of("/usr/include/linux/userfaultfd.h"))
                && Files.isExecutable(Path.of("/usr/bin/gcc"));
        if (!tools) System.err.println("\n*** SKIPPING ABI layout test: gcc or linux/userfaultfd.h missing (apt-get install gcc linux-libc-dev) ***\n");
        Assumptions.assumeTrue(tools, "gcc and linux/userfaultfd.h are needed");
        Process gcc = new ProcessBuilder("gcc", "-o", exe.toString(), c.toString()).inheritIO().start();
        assertThat(gcc.waitFor(60, TimeUnit.SECONDS) && gcc.exitValue() == 0).as("the ABI probe compiles").isTrue();
        Process run = new ProcessBuilder(exe.toString()).start();
        List<String> lines = new String(run.getInputStream().readAllBytes()).lines().toList();
        assertThat(run.waitFor()).isZero();
        for (String l : lines) {
            int eq = l.lastIndexOf('=');
            kernel.put(l.substring(0, eq), Long.parseUnsignedLong(l.substring(eq + 1)));
        }
    }

    @Test
    void ioctlNumbersMatchTheHeader() {
        assertThat(kernel.get("UFFD_API")).isEqualTo(Userfaultfd.UFFD_API);
        assertThat(kernel.get("UFFDIO_API")).isEqualTo(Userfaultfd.UFFDIO_API);
        assertThat(kernel.get("UFFDIO_REGISTER")).isEqualTo(Userfaultfd.UFFDIO_REGISTER);
        assertThat(kernel.get("UFFDIO_UNREGISTER")).isEqualTo(Userfaultfd.UFFDIO_UNREGISTER);
        assertThat(kernel.get("UFFDIO_WAKE")).isEqualTo(Userfaultfd.UFFDIO_WAKE);
        assertThat(kernel.get("UFFDIO_COPY")).isEqualTo(Userfaultfd.UFFDIO_COPY);
        assertThat(kernel.get("UFFDIO_ZEROPAGE")).isEqualTo(Userfaultfd.UFFDIO_ZEROPAGE);
        assertThat(kernel.get("UFFDIO_WRITEPROTECT")).isEqualTo(Userfaultfd.UFFDIO_WRITEPROTECT);
        assertThat(kernel.get("UFFDIO_CONTINUE")).isEqualTo(Userfaultfd.UFFDIO_CONTINUE);
        assertThat(kernel.get("UFFDIO_MOVE")).isEqualTo(Userfaultfd.UFFDIO_MOVE);
        assertThat(kernel.get("PAGEMAP_SCAN")).isEqualTo(PageMap.PAGEMAP_SCAN);
    }

    @Test
    void messageLayoutMatchesTheHeader() {
        assertThat(kernel.get("sizeof uffd_msg")).isEqualTo(UffdMessages.MSG_SIZE);
        assertThat(kernel.get("msg.event")).isZero();
        assertThat(kernel.get("msg.flags")).isEqualTo(UffdMessages.OFF_FLAGS);
        assertThat(kernel.get("msg.address")).isEqualTo(UffdMessages.OFF_ADDRESS);
        assertThat(kernel.get("msg.ptid")).isEqualTo(UffdMessages.OFF_PTID);
        assertThat(kernel.get("msg.fork.ufd")).isEqualTo(UffdMessages.OFF_ARG0);
        assertThat(kernel.get("msg.remap.from")).isEqualTo(UffdMessages.OFF_ARG0);
        assertThat(kernel.get("msg.remap.to")).isEqualTo(UffdMessages.OFF_ARG1);
        assertThat(kernel.get("msg.remap.len")).isEqualTo(UffdMessages.OFF_ARG2);
        assertThat(kernel.get("msg.remove.start")).isEqualTo(UffdMessages.OFF_ARG0);
        assertThat(kernel.get("msg.remove.end")).isEqualTo(UffdMessages.OFF_ARG1);
        assertThat(kernel.get("EVENT_PAGEFAULT")).isEqualTo(UffdMessages.EVENT_PAGEFAULT);
        assertThat(kernel.get("EVENT_FORK")).isEqualTo(UffdMessages.EVENT_FORK);
        assertThat(kernel.get("EVENT_REMAP")).isEqualTo(UffdMessages.EVENT_REMAP);
        assertThat(kernel.get("EVENT_REMOVE")).isEqualTo(UffdMessages.EVENT_REMOVE);
        assertThat(kernel.get("EVENT_UNMAP")).isEqualTo(UffdMessages.EVENT_UNMAP);
    }

    @Test
    void resultFieldOffsetsMatchTheHeader() {
        // Userfaultfd writes these structs field by field: api (api, features, ioctls), register (start, len, mode, ioctls),
        // copy (dst, src, len, mode, copy), zeropage/continue (start, len, mode, result)
        assertThat(kernel.get("api.ioctls")).isEqualTo(16);
        assertThat(kernel.get("register.ioctls")).isEqualTo(24);
        assertThat(kernel.get("copy.copy")).isEqualTo(32);
        assertThat(kernel.get("zeropage.zeropage")).isEqualTo(24);
        assertThat(kernel.get("continue.mapped")).isEqualTo(24);
    }

    @Test
    void featureBitsMatchTheHeader() {
        assertThat(kernel.get("FEATURE_THREAD_ID")).isEqualTo(UffdFeature.THREAD_ID.bit());
        assertThat(kernel.get("FEATURE_MINOR_SHMEM")).isEqualTo(UffdFeature.MINOR_SHMEM.bit());
        assertThat(kernel.get("FEATURE_WP_HUGETLBFS_SHMEM")).isEqualTo(UffdFeature.WP_HUGETLBFS_SHMEM.bit());
    }
}
