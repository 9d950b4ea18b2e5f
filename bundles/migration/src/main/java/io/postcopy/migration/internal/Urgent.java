package io.postcopy.migration.internal;

import io.postcopy.uffd.UrgentThread;

/**
 * Sets the calling thread's priority by what it carries: requested pages, for which a guest is waiting, go
 * first; background pages, once a guest runs on them, go after the guest's own threads while it faults.
 */
public final class Urgent {
    private static volatile boolean refused;

    private Urgent() {}

    /** The calling thread's scheduling handle; {@link UrgentThread#charge()} it after each piece of work. */
    public static UrgentThread thread(Settings s, String what) {
        UrgentThread u = UrgentThread.enter(s.urgentThreadFifoPriority(), s.urgentThreadNice());
        if (u.refused() && !refused) {
            refused = true;
            AbstractMigration.LOG.warn("{} keeps the default priority: {}", what, u.scheduling());
        }
        return u;
    }

    /**
     * The calling thread moves background pages from now on while a guest may wait ({@link BulkThread}): nice
     * {@code bulkThreadNice} if above 0 (raising nice needs no privilege), or, by default, yielding while the guest
     * faults ({@code requests} counts its page requests). The threads are the migration's own, so the value ends with
     * them.
     */
    public static BulkThread bulk(Settings s, String what, java.util.function.LongSupplier requests) {
        return BulkThread.enter(s, what, requests);
    }
}
