package io.postcopy.migration.internal;

import io.postcopy.uffd.NativeMemory;

/** Raises the calling thread's priority: it carries requested pages, for which a guest is waiting. */
final class Urgent {
    private static volatile boolean refused;

    private Urgent() {}

    static void thread(Settings s, String what) {
        int nice = s.urgentThreadNice(), fifo = s.urgentThreadFifoPriority();
        if ((nice == 0 && fifo == 0) || refused) return;
        if (!(fifo > 0 ? NativeMemory.setThreadRealtime(fifo) : NativeMemory.setThreadNice(nice))) {
            refused = true;
            AbstractMigration.LOG.warn("{} keeps the default priority: {} refused (needs CAP_SYS_NICE)", what,
                    fifo > 0 ? "SCHED_FIFO " + fifo : "nice " + nice);
        }
    }
}
