package io.postcopy.policy.internal;

import io.postcopy.policy.HugePagePolicy;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

@ObjectClassDefinition(id = HugePagePolicy.PID, name = "Postcopy transparent huge pages",
        description = "Transparent huge pages are turned off on RAM blocks before discards; this decides whether"
                + " they are turned back on after postcopy.")
public @interface HugePageConfig {
    @AttributeDefinition(name = "Restore huge pages",
            description = "After postcopy cleanup, madvise(MADV_HUGEPAGE) the ranges that were turned off;"
                    + " when false they keep MADV_NOHUGEPAGE.")
    boolean restoreHugePages() default true;
}
