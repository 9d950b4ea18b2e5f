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
 *                         milliseconds behind the stream); 0 = unchanged; {@link #BULK_ADAPTIVE} (the default):
 *                         {@code bulkThreadYieldNice} while the guest faults, unchanged otherwise ({@link BulkThread})
 * @param bulkThreadYieldNice nice value (1..19) of those threads while the guest faults, with {@code bulkThreadNice} -1
 * @param prefetchMaxPages the largest window of target pages the source pushes after a requested page in postcopy,
 *                         learned per block from the requests (source.PrefetchWindow); 0 = off; a migration's
 *                         {@link io.postcopy.migration.OutgoingOptions#prefetchMaxPages} overrides it
 */
public record Settings(String listenAddress, int sendBufferSize, int stagingBatchSize, int maxPackageSize,
                       int receiveBufferSize, int urgentThreadNice, int urgentThreadFifoPriority,
                       int preemptReceiveBufferSize, int retainEndedMigrations, int bulkThreadNice, int bulkThreadYieldNice,
                       int prefetchMaxPages,
                       Limits limits) {
    /** {@code bulkThreadNice} -1: the threads moving background pages yield while the guest faults. */
    public static final int BULK_ADAPTIVE = -1;

    /** {@link MigrationConfig}'s defaults, the only place they are written. */
    public static final Settings DEFAULTS;

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
        if (bulkThreadNice < BULK_ADAPTIVE || bulkThreadNice > 19)
            throw new IllegalArgumentException("bulkThreadNice " + bulkThreadNice + " not in 0..19 (or -1: yield while the guest faults)");
        if (bulkThreadYieldNice < 1 || bulkThreadYieldNice > 19)
            throw new IllegalArgumentException("bulkThreadYieldNice " + bulkThreadYieldNice + " not in 1..19");
        if (prefetchMaxPages < 0 || prefetchMaxPages > io.postcopy.migration.OutgoingOptions.MAX_PREFETCH_PAGES)
            throw new IllegalArgumentException("prefetchMaxPages " + prefetchMaxPages + " not in 0.."
                    + io.postcopy.migration.OutgoingOptions.MAX_PREFETCH_PAGES);
    }

    /** The attributes of {@link MigrationConfig} that are settings: all but the listener opened at activation. */
    public static final java.util.Set<String> KEYS;
    private static final java.util.Map<String, Class<?>> TYPES = new java.util.TreeMap<>();
    private static final org.osgi.util.converter.Converter CONVERTER = org.osgi.util.converter.Converters.standardConverter();

    static {
        for (java.lang.reflect.Method m : MigrationConfig.class.getDeclaredMethods()) {
            if (!m.getName().equals("listenPort")) TYPES.put(m.getName(), m.getReturnType());
        }
        KEYS = java.util.Collections.unmodifiableSet(TYPES.keySet());
        DEFAULTS = of(config(java.util.Map.of()));
    }

    /** The settings of a configuration as DS hands it over (its values are checked here). */
    public static Settings of(MigrationConfig c) {
        return new Settings(c.listenAddress().trim(), c.sendBufferSize(), c.stagingBatchSize(), c.maxPackageSize(),
                c.receiveBufferSize(), c.urgentThreadNice(), c.urgentThreadFifoPriority(), c.preemptReceiveBufferSize(),
                c.retainEndedMigrations(), c.bulkThreadNice(), c.bulkThreadYieldNice(), c.prefetchMaxPages(), new Limits(c.maxMigrationRamMiB(), c.maxIncomingRamMiB(),
                c.ramReserveMiB(), c.maxConnectionsPerListener(), c.firstBytesTimeoutMillis(), c.handshakeTimeoutMillis(),
                c.maxDeviceStateMiB(), c.tlsCredentialsDir().trim(), c.tlsAuthorizedSubjects().trim(), c.silenceTimeoutMillis()));
    }

    /**
     * Configuration properties as PID {@code io.postcopy.migration} names them (values are numbers or their strings;
     * absent keys keep {@link MigrationConfig}'s defaults) as the typed configuration, through the OSGi Converter as
     * DS does it. An unknown key or a value that is no value of its attribute's type is an IllegalArgumentException
     * naming it.
     */
    public static MigrationConfig config(java.util.Map<String, ?> c) {
        for (java.util.Map.Entry<String, ?> e : c.entrySet()) {
            Class<?> type = TYPES.get(e.getKey());
            if (type == null) throw new IllegalArgumentException("unknown migration setting \"" + e.getKey() + "\"; known: " + KEYS);
            try {
                CONVERTER.convert(e.getValue()).to(type);
            } catch (RuntimeException x) {
                throw new IllegalArgumentException("migration setting " + e.getKey() + " = \"" + e.getValue() + "\" is no "
                        + (type == int.class ? "integer" : type.getSimpleName()), x);
            }
        }
        return CONVERTER.convert(c).to(MigrationConfig.class);
    }

    /** Settings from configuration properties: {@link #of}({@link #config}(c)). */
    public static Settings from(java.util.Map<String, ?> c) {
        return of(config(c));
    }

    /** {@code realtimeCpuPercent} of a configuration, checked (1..100); not part of the record (it is JVM-wide). */
    public static int realtimeCpuPercent(MigrationConfig c) {
        int p = c.realtimeCpuPercent();
        if (p < 1 || p > 100) throw new IllegalArgumentException("realtimeCpuPercent " + p + " not in 1..100");
        return p;
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
