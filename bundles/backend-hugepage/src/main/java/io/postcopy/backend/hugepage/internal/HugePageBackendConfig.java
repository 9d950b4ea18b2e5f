package io.postcopy.backend.hugepage.internal;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

@ObjectClassDefinition(id = HugePagePlacementBackend.PID, name = "Postcopy hugepage placement backend",
        description = "Places hugetlbfs blocks one whole huge page at a time through the block's temporary huge page")
public @interface HugePageBackendConfig {
    @AttributeDefinition(name = "Service ranking", description = "The fault service uses, per block, the highest-ranked "
            + "backend that supports it; the anon backend ranks 0")
    int service_ranking() default 100;
}
