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
 * @param bulkThreadNice   nice value (0..19) of the threads that move background pages once a guest may wait on
 *                         them: the destination's stream thread from RUN, the source's sender in postcopy. Above
 *                         0 a guest's threads are entitled to more CPU than the stream (EEVDF places a waking
 *                         thread by its lag: with equal weights a busy guest woken from a fault often waits
 *                         milliseconds behind the stream); 0 = unchanged
 */
public record Settings(String listenAddress, int sendBufferSize, int stagingBatchSize, int maxPackageSize,
                       int receiveBufferSize, int urgentThreadNice, int urgentThreadFifoPriority,
                       int preemptReceiveBufferSize, int retainEndedMigrations, int bulkThreadNice, Limits limits) {
    public static final Settings DEFAULTS = new Settings("127.0.0.1", 128 * 1024, 64 * 1024, 64 << 20, 128 * 1024, -5, 1, 1 << 20, 64, 0);

    /** With the default {@link Limits}. */
    public Settings(String listenAddress, int sendBufferSize, int stagingBatchSize, int maxPackageSize,
                    int receiveBufferSize, int urgentThreadNice, int urgentThreadFifoPriority,
                    int preemptReceiveBufferSize, int retainEndedMigrations, int bulkThreadNice) {
        this(listenAddress, sendBufferSize, stagingBatchSize, maxPackageSize, receiveBufferSize, urgentThreadNice,
                urgentThreadFifoPriority, preemptReceiveBufferSize, retainEndedMigrations, bulkThreadNice, Limits.DEFAULTS);
    }

    /**
     * What a peer may make us allocate or hold, checked before anything is allocated for it.
     *
     * @param maxMigrationRamMiB RAM one incoming migration may announce; 0 = the host's MemAvailable less
     *                           {@code ramReserveMiB}, read when the block list arrives
     * @param maxIncomingRamMiB  RAM all live incoming migrations together may still need (announced, not yet
     *                           received); 0 = MemAvailable less the reserve
     * @param ramReserveMiB      MemAvailable kept for everything else (the JVM, the host)
     * @param maxConnections     connections a listener routes or runs at once; more are closed at accept
     * @param firstBytesMillis   how long a new connection may take to show what it is (and a channel its token)
     * @param handshakeMillis    how long a migration stream may take from its first bytes to its block list
     * @param maxDeviceStateMiB  device-state bytes (loaded and opaque) one incoming migration may send in all
     * @param tlsCredentialsDir  TLS for every listener and migration that does not give its own: a QEMU-style
     *                           credentials directory; empty: none
     * @param tlsAuthorizedSubjects with it, the client certificate subjects listeners accept, separated by ';'
     *                           (subjects contain commas); empty: any certificate the CA signed
     * @param silenceMillis      in postcopy between our own ends: a connection silent this long is lost (the source
     *                           PINGs at a third of it), and the migration pauses
     */
    public record Limits(int maxMigrationRamMiB, int maxIncomingRamMiB, int ramReserveMiB, int maxConnections,
                         int firstBytesMillis, int handshakeMillis, int maxDeviceStateMiB, String tlsCredentialsDir,
                         String tlsAuthorizedSubjects, int silenceMillis) {
        public static final Limits DEFAULTS = new Limits(0, 0, 1024, 64, 10_000, 30_000, 256, "", "", 10_000);

        /** The service-wide TLS, or null. */
        public io.postcopy.migration.TlsOptions tls() {
            if (tlsCredentialsDir.isBlank()) return null;
            java.util.List<String> subjects = new java.util.ArrayList<>();
            for (String x : tlsAuthorizedSubjects.split(";")) if (!x.isBlank()) subjects.add(x.trim());
            return io.postcopy.migration.TlsOptions.of(java.nio.file.Path.of(tlsCredentialsDir.trim())).withAuthorizedSubjects(subjects);
        }

        public Limits {
            if (maxMigrationRamMiB < 0 || maxIncomingRamMiB < 0 || ramReserveMiB < 0 || maxDeviceStateMiB < 0)
                throw new IllegalArgumentException("RAM and device-state limits must not be negative");
            if (maxConnections < 1) throw new IllegalArgumentException("maxConnectionsPerListener " + maxConnections + " < 1");
            if (firstBytesMillis < 1 || handshakeMillis < 1 || silenceMillis < 100)
                throw new IllegalArgumentException("firstBytesTimeoutMillis and handshakeTimeoutMillis must be positive, "
                        + "silenceTimeoutMillis at least 100");
            java.util.Objects.requireNonNull(tlsCredentialsDir, "tlsCredentialsDir");
            java.util.Objects.requireNonNull(tlsAuthorizedSubjects, "tlsAuthorizedSubjects");
        }
    }
    /** The JVM-wide real-time budget's default (percent of one CPU), a setting outside this record. */
    public static final int DEFAULT_REALTIME_CPU_PERCENT = 50;

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
        if (bulkThreadNice < 0 || bulkThreadNice > 19)
            throw new IllegalArgumentException("bulkThreadNice " + bulkThreadNice + " not in 0..19");
    }

    /** The keys of {@link #from}: the attributes of the configuration (PID {@code io.postcopy.migration}) it reads. */
    public static final java.util.Set<String> KEYS = java.util.Set.of("listenAddress", "sendBufferSize",
            "stagingBatchSize", "maxPackageSize", "receiveBufferSize", "urgentThreadNice", "urgentThreadFifoPriority",
            "preemptReceiveBufferSize", "retainEndedMigrations", "bulkThreadNice", "realtimeCpuPercent",
            "maxMigrationRamMiB", "maxIncomingRamMiB", "ramReserveMiB", "maxConnectionsPerListener",
            "firstBytesTimeoutMillis", "handshakeTimeoutMillis", "maxDeviceStateMiB", "tlsCredentialsDir",
            "tlsAuthorizedSubjects", "silenceTimeoutMillis");

    /**
     * Settings from configuration properties as the OSGi configuration names them (absent keys keep
     * {@link #DEFAULTS}; values are numbers or their decimal strings); {@code realtimeCpuPercent} is read by
     * {@link #realtimeCpuPercent(java.util.Map)}. An unknown key or a bad value is an IllegalArgumentException
     * naming it.
     */
    public static Settings from(java.util.Map<String, ?> c) {
        for (String k : c.keySet()) {
            if (!KEYS.contains(k)) throw new IllegalArgumentException("unknown migration setting \"" + k + "\"; known: "
                    + new java.util.TreeSet<>(KEYS));
        }
        Settings d = DEFAULTS;
        Object address = c.get("listenAddress");
        return new Settings(address == null ? d.listenAddress() : address.toString(),
                num(c, "sendBufferSize", d.sendBufferSize()), num(c, "stagingBatchSize", d.stagingBatchSize()),
                num(c, "maxPackageSize", d.maxPackageSize()), num(c, "receiveBufferSize", d.receiveBufferSize()),
                num(c, "urgentThreadNice", d.urgentThreadNice()), num(c, "urgentThreadFifoPriority", d.urgentThreadFifoPriority()),
                num(c, "preemptReceiveBufferSize", d.preemptReceiveBufferSize()),
                num(c, "retainEndedMigrations", d.retainEndedMigrations()), num(c, "bulkThreadNice", d.bulkThreadNice()),
                limits(c));
    }

    private static Limits limits(java.util.Map<String, ?> c) {
        Limits d = Limits.DEFAULTS;
        return new Limits(num(c, "maxMigrationRamMiB", d.maxMigrationRamMiB()), num(c, "maxIncomingRamMiB", d.maxIncomingRamMiB()),
                num(c, "ramReserveMiB", d.ramReserveMiB()), num(c, "maxConnectionsPerListener", d.maxConnections()),
                num(c, "firstBytesTimeoutMillis", d.firstBytesMillis()), num(c, "handshakeTimeoutMillis", d.handshakeMillis()),
                num(c, "maxDeviceStateMiB", d.maxDeviceStateMiB()), str(c, "tlsCredentialsDir", d.tlsCredentialsDir()),
                str(c, "tlsAuthorizedSubjects", d.tlsAuthorizedSubjects()), num(c, "silenceTimeoutMillis", d.silenceMillis()));
    }

    private static String str(java.util.Map<String, ?> c, String key, String otherwise) {
        Object v = c.get(key);
        return v == null ? otherwise : v.toString().trim();
    }

    /** {@code realtimeCpuPercent} of configuration properties (1..100), or the default. */
    public static int realtimeCpuPercent(java.util.Map<String, ?> c) {
        int p = num(c, "realtimeCpuPercent", DEFAULT_REALTIME_CPU_PERCENT);
        if (p < 1 || p > 100) throw new IllegalArgumentException("realtimeCpuPercent " + p + " not in 1..100");
        return p;
    }

    private static int num(java.util.Map<String, ?> c, String key, int otherwise) {
        Object v = c.get(key);
        if (v == null) return otherwise;
        if (v instanceof Number n) return n.intValue();
        try {
            return Integer.parseInt(v.toString().trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("migration setting " + key + " = \"" + v + "\" is no integer");
        }
    }

    /** Drops the oldest ended migrations of {@code list} beyond {@code keep}. */
    public static void pruneEnded(java.util.List<? extends io.postcopy.migration.Migration> list, int keep) {
        int ended = 0;
        for (io.postcopy.migration.Migration m : list) if (m.state().isFinal()) ended++;
        for (io.postcopy.migration.Migration m : list) {    // oldest first (a CopyOnWriteArrayList snapshot)
            if (ended <= keep) return;
            if (m.state().isFinal() && list.remove(m)) ended--;
        }
    }
}
