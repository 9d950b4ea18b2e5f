package io.postcopy.backend.hugepage.standalone;

import io.postcopy.backend.hugepage.internal.HugePagePlacementBackend;
import io.postcopy.fault.PlacementBackend;

/** The hugepage placement backend for a fault service made with {@code FaultHandlers} (ranking 100 in OSGi). */
public final class HugePageBackends {
    private HugePageBackends() {}

    public static PlacementBackend newBackend() {
        return new HugePagePlacementBackend();
    }
}
