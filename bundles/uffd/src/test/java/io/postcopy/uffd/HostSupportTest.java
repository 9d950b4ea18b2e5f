package io.postcopy.uffd;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class HostSupportTest {
    @Test
    void thisHostSupportsPostcopy() {
        HostSupportReport r = HostSupport.probe(4096);
        assertThat(r.supported()).as(r.failures()).isTrue();
        assertThat(r.checks()).extracting(HostSupportReport.Check::name)
                .contains("target page size", "userfaultfd syscall", "/dev/userfaultfd", "API handshake", "anonymous memory");
        assertThat(r.features()).contains(UffdFeature.THREAD_ID, UffdFeature.MISSING_SHMEM);
        assertThat(r.ioctlsByBacking().get("anonymous")).contains(UffdIoctl.COPY, UffdIoctl.ZEROPAGE, UffdIoctl.WAKE);
        assertThat(r.hostPageSize()).isEqualTo(4096);
        assertThat(r.failures()).isEmpty();
    }

    @Test
    void aTargetPageLargerThanTheHostPageIsRefusedWithTheReason() {
        HostSupportReport r = HostSupport.probe(65536);
        assertThat(r.supported()).isFalse();
        assertThat(r.failures()).contains("target page size").contains("65536").contains("4096");
    }
}
