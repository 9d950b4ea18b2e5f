package io.postcopy.migration.internal;

import io.postcopy.uffd.UrgentThread;

/** Raises the calling thread's priority: it carries requested pages, for which a guest is waiting. */
final class Urgent {
    private static volatile boolean refused;

    private Urgent() {}

    /** The calling thread's scheduling handle; {@link UrgentThread#charge()} it after each piece of work. */
    static UrgentThread thread(Settings s, String what) {
        UrgentThread u = UrgentThread.enter(s.urgentThreadFifoPriority(), s.urgentThreadNice());
        if (u.refused() && !refused) {
            refused = true;
            AbstractMigration.LOG.warn("{} keeps the default priority: {}", what, u.scheduling());
        }
        return u;
    }
}
