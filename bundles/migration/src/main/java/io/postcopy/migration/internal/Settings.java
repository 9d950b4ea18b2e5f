package io.postcopy.migration.internal;

/**
 * Service-wide defaults (the configuration of PID {@code io.postcopy.migration}).
 *
 * @param listenAddress    address a listener binds when none is given
 * @param sendBufferSize   SO_SNDBUF of outgoing connections and size of the encoder's buffer; 0 = kernel default
 * @param stagingBatchSize bytes of contiguous pages gathered before one placement on the destination
 * @param maxPackageSize   cap on an incoming PACKAGED blob
 * @param receiveBufferSize SO_RCVBUF of accepted connections; 0 = kernel default
 * @param urgentThreadNice nice value of the threads on a requested page's way (the source's return-path
 *                         thread, the destination's postcopy-preempt channel thread); 0 = unchanged
 * @param urgentThreadFifoPriority 0: the nice value applies; 1..99: those threads run SCHED_FIFO at that priority
 *                         while within the JVM's real-time budget ({@link io.postcopy.uffd.UrgentThread})
 * @param preemptReceiveBufferSize SO_RCVBUF of a main connection once a postcopy-preempt channel is tied to it:
 *                         requested pages no longer wait behind its bytes, so it may hold more; 0 = unchanged
 * @param retainEndedMigrations ended migrations kept for status (per service and per listener); older ones are
 *                         dropped when a new one starts, so a long-running server does not keep them all
 */
public record Settings(String listenAddress, int sendBufferSize, int stagingBatchSize, int maxPackageSize,
                       int receiveBufferSize, int urgentThreadNice, int urgentThreadFifoPriority,
                       int preemptReceiveBufferSize, int retainEndedMigrations) {
    public static final Settings DEFAULTS = new Settings("127.0.0.1", 128 * 1024, 64 * 1024, 64 << 20, 128 * 1024, -5, 1, 1 << 20, 64);

    public Settings {
        if (stagingBatchSize < 4096 || stagingBatchSize % 4096 != 0)
            throw new IllegalArgumentException("stagingBatchSize must be a multiple of 4096: " + stagingBatchSize);
        if (retainEndedMigrations < 0)
            throw new IllegalArgumentException("retainEndedMigrations " + retainEndedMigrations + " is negative");
        if (sendBufferSize < 0 || receiveBufferSize < 0 || preemptReceiveBufferSize < 0 || maxPackageSize <= 0)
            throw new IllegalArgumentException("bad sendBufferSize " + sendBufferSize + " or maxPackageSize " + maxPackageSize);
        if (urgentThreadNice < -20 || urgentThreadNice > 19)
            throw new IllegalArgumentException("urgentThreadNice " + urgentThreadNice + " not in -20..19");
        if (urgentThreadFifoPriority < 0 || urgentThreadFifoPriority > 99)
            throw new IllegalArgumentException("urgentThreadFifoPriority " + urgentThreadFifoPriority + " not in 0..99");
    }

    /** Drops the oldest ended migrations of {@code list} beyond {@code keep}. */
    static void pruneEnded(java.util.List<? extends io.postcopy.migration.Migration> list, int keep) {
        int ended = 0;
        for (io.postcopy.migration.Migration m : list) if (m.state().isFinal()) ended++;
        for (io.postcopy.migration.Migration m : list) {    // oldest first (a CopyOnWriteArrayList snapshot)
            if (ended <= keep) return;
            if (m.state().isFinal() && list.remove(m)) ended--;
        }
    }
}
