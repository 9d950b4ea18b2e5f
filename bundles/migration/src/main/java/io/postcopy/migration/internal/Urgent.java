package io.postcopy.migration.internal;

import io.postcopy.uffd.NativeMemory;

/** Raises the calling thread's priority: it carries requested pages, for which a guest is waiting. */
final class Urgent {
    private static volatile boolean refused;

    private Urgent() {}

    static void thread(int nice, String what) {
        if (nice == 0 || refused) return;
        if (!NativeMemory.setThreadNice(nice)) {
            refused = true;
            AbstractMigration.LOG.warn("{} keeps the default priority: nice {} refused (needs CAP_SYS_NICE)", what, nice);
        }
    }
}
