package io.postcopy.fault.standalone;

import io.postcopy.fault.FaultService;
import io.postcopy.fault.PlacementBackend;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A fault service made without a framework: the caller adds and removes its placement backends, as the OSGi
 * component does from the service registry. The OSGi service has no such methods: there a backend is a
 * {@link PlacementBackend} service, and nothing else.
 */
@ProviderType
public interface StandaloneFaultService extends FaultService {
    /** Adds a backend; of those that support a block, the highest ranking places its pages. */
    void addBackend(PlacementBackend backend, int ranking);

    /** Removes a backend; blocks using it switch to the next one after their in-flight placement. */
    void removeBackend(PlacementBackend backend);
}
