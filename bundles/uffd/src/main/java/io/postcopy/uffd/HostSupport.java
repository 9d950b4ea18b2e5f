package io.postcopy.uffd;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The seed's {@code postcopy_ram_supported_by_host}, returning a report instead of a boolean: can a
 * userfaultfd be opened (and how), does the API handshake work, and can anonymous memory be registered
 * MISSING with WAKE, COPY and ZEROPAGE — the ioctls a postcopy destination cannot do without.
 */
public final class HostSupport {
    private HostSupport() {}

    public static HostSupportReport probe(long targetPageSize) {
        List<HostSupportReport.Check> checks = new ArrayList<>();
        Map<String, Set<UffdIoctl>> ioctls = new LinkedHashMap<>();
        Set<UffdFeature> features = EnumSet.noneOf(UffdFeature.class);
        long host = NativeMemory.pageSize(), huge = NativeMemory.hugePageSize();

        checks.add(pageSizeCheck(targetPageSize, host));

        Userfaultfd probeFd = null;
        try {
            probeFd = Userfaultfd.openSyscall(Userfaultfd.O_CLOEXEC | Userfaultfd.O_NONBLOCK);
            checks.add(pass("userfaultfd syscall", true, "opened fd " + probeFd.fd()));
        } catch (UffdException e) {
            checks.add(new HostSupportReport.Check("userfaultfd syscall", false, false, e.getMessage()
                    + "; vm.unprivileged_userfaultfd=" + sysctl(), fixFor(e.errno())));
        }
        try (Userfaultfd dev = Userfaultfd.openDevice(Userfaultfd.O_CLOEXEC | Userfaultfd.O_NONBLOCK)) {
            checks.add(pass("/dev/userfaultfd", false, "opened fd " + dev.fd()));
        } catch (UffdException e) {
            checks.add(new HostSupportReport.Check("/dev/userfaultfd", false, false, e.getMessage(),
                    "grant read/write access to /dev/userfaultfd (e.g. a group with rw), or run as root"));
            if (probeFd == null) {
                checks.add(new HostSupportReport.Check("userfaultfd available", false, true,
                        "neither the syscall nor /dev/userfaultfd gave a descriptor",
                        fixFor(Errno.EPERM)));
            }
        }
        if (probeFd == null) {
            try {
                probeFd = Userfaultfd.openDevice(Userfaultfd.O_CLOEXEC | Userfaultfd.O_NONBLOCK);
            } catch (UffdException ignored) {
                // reported above
            }
        }
        if (probeFd != null) {
            try (Userfaultfd u = probeFd) {
                Userfaultfd.Api api = u.api(EnumSet.noneOf(UffdFeature.class));
                features.addAll(api.available());
                boolean ok = api.ioctls().containsAll(EnumSet.of(UffdIoctl.REGISTER, UffdIoctl.UNREGISTER));
                checks.add(new HostSupportReport.Check("API handshake", ok, true,
                        "features " + api.available() + ", ioctls " + api.ioctls(),
                        ok ? null : "kernel lacks UFFDIO_REGISTER/UNREGISTER: upgrade the kernel"));
            } catch (UffdException e) {
                checks.add(new HostSupportReport.Check("API handshake", false, true, e.getMessage(), "upgrade the kernel (Linux 4.3+)"));
            }
            checks.add(registration("anonymous memory", true, ioctls, "anonymous",
                    () -> Mapping.anonymous(host), EnumSet.of(UffdIoctl.WAKE, UffdIoctl.COPY, UffdIoctl.ZEROPAGE)));
            checks.add(registration("shared memory (memfd)", false, ioctls, "shmem",
                    () -> Mapping.memfd("postcopy-probe", host), EnumSet.of(UffdIoctl.WAKE, UffdIoctl.COPY, UffdIoctl.ZEROPAGE)));
            if (huge > 0 && NativeMemory.hugePagesFree() > 0) {
                checks.add(registration("hugetlb memory", false, ioctls, "hugetlb",
                        () -> Mapping.hugetlb("postcopy-probe", huge), EnumSet.of(UffdIoctl.WAKE, UffdIoctl.COPY)));
            } else {
                checks.add(new HostSupportReport.Check("hugetlb memory", false, false,
                        "no free huge pages (" + (huge / 1024) + " kB pages): hugetlb blocks unavailable",
                        "reserve some: echo N > /proc/sys/vm/nr_hugepages"));
            }
        }
        boolean supported = checks.stream().noneMatch(c -> c.mandatory() && !c.passed())
                && checks.stream().anyMatch(c -> c.name().equals("API handshake") && c.passed());
        return new HostSupportReport(supported, List.copyOf(checks), Collections.unmodifiableSet(features),
                Collections.unmodifiableMap(ioctls), host, huge, targetPageSize);
    }

    private interface MappingFactory {
        Mapping map();
    }

    private static HostSupportReport.Check registration(String name, boolean mandatory, Map<String, Set<UffdIoctl>> out,
                                                        String backing, MappingFactory factory, Set<UffdIoctl> needed) {
        try (Userfaultfd u = Userfaultfd.open(); Mapping m = factory.map()) {
            u.api(EnumSet.noneOf(UffdFeature.class));
            Set<UffdIoctl> got = u.register(m.address(), m.length(), EnumSet.of(RegisterMode.MISSING));
            u.unregister(m.address(), m.length());
            out.put(backing, Collections.unmodifiableSet(got));
            boolean ok = got.containsAll(needed);
            EnumSet<UffdIoctl> missing = EnumSet.copyOf(needed);
            missing.removeAll(got);
            return new HostSupportReport.Check(name, ok, mandatory, ok ? "ioctls " + got : "missing " + missing + " (got " + got + ")",
                    ok ? null : "upgrade the kernel");
        } catch (UffdException e) {
            return new HostSupportReport.Check(name, false, mandatory, e.getMessage(), "upgrade the kernel");
        }
    }

    private static HostSupportReport.Check pageSizeCheck(long target, long host) {
        boolean ok = target > 0 && target <= host && (target & (target - 1)) == 0;
        return new HostSupportReport.Check("target page size", ok, true,
                "target " + target + " bytes, host " + host + " bytes",
                ok ? null : "the target page size must be a power of two no larger than the host page size");
    }

    private static HostSupportReport.Check pass(String name, boolean mandatory, String detail) {
        return new HostSupportReport.Check(name, true, mandatory, detail, null);
    }

    private static String fixFor(int errno) {
        if (errno == Errno.EPERM)
            return "run as root, or sysctl -w vm.unprivileged_userfaultfd=1, or give this user access to /dev/userfaultfd";
        if (errno == Errno.ENOSYS) return "the kernel was built without CONFIG_USERFAULTFD";
        return null;
    }

    /** vm.unprivileged_userfaultfd, or "unknown". */
    public static String sysctl() {
        try {
            return Files.readString(Path.of("/proc/sys/vm/unprivileged_userfaultfd")).trim();
        } catch (IOException e) {
            return "unknown";
        }
    }
}
