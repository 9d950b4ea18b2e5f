package io.postcopy.uffd;

/** The host-support probe as an OSGi service (the seed's {@code postcopy_ram_supported_by_host}). */
public interface HostSupportProbe {
    /** Runs every check now, for the given target page size. */
    HostSupportReport probe(long targetPageSize);

    /** Runs every check for 4 KiB target pages. */
    default HostSupportReport probe() {
        return probe(4096);
    }
}
