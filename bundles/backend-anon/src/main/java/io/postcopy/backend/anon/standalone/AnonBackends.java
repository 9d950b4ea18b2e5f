package io.postcopy.backend.anon.standalone;

import io.postcopy.backend.anon.internal.AnonPlacementBackend;
import io.postcopy.fault.PlacementBackend;

/** The 4 KiB placement backend for a fault service made with {@code FaultHandlers} (ranking 0 in OSGi). */
public final class AnonBackends {
    private AnonBackends() {}

    public static PlacementBackend newBackend() {
        return new AnonPlacementBackend();
    }
}
