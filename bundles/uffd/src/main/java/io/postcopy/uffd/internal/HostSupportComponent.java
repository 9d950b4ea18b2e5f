package io.postcopy.uffd.internal;

import io.postcopy.uffd.HostSupport;
import io.postcopy.uffd.HostSupportProbe;
import io.postcopy.uffd.HostSupportReport;
import org.osgi.service.component.annotations.Component;

/** Publishes the host-support probe; activation loads the native binding, so a broken jffi shows up at once. */
@Component(service = HostSupportProbe.class)
public class HostSupportComponent implements HostSupportProbe {
    @Override
    public HostSupportReport probe(long targetPageSize) {
        return HostSupport.probe(targetPageSize);
    }
}
