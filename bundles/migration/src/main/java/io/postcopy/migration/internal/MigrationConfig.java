package io.postcopy.migration.internal;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

@ObjectClassDefinition(name = "Postcopy migration", description = "Defaults of the migration service")
public @interface MigrationConfig {
    @AttributeDefinition(description = "Address listeners bind when none is given")
    String listenAddress() default "127.0.0.1";

    @AttributeDefinition(description = "Port of a listener opened at activation; -1 for none, 0 for an ephemeral port")
    int listenPort() default -1;

    @AttributeDefinition(description = "Largest PACKAGED blob accepted (bytes)")
    int maxPackageSize() default 64 << 20;

    /**
     * Small socket buffers keep requested pages from queueing behind megabytes of background pages: measured
     * with 256 MiB and a faulting reader, kernel defaults gave a request latency p50 of 24 ms, 128 KiB 0.5 ms,
     * at equal or better throughput.
     */
    @AttributeDefinition(description = "SO_SNDBUF of outgoing connections and the encoder's buffer (bytes); 0 = kernel default")
    int sendBufferSize() default 128 * 1024;

    @AttributeDefinition(description = "SO_RCVBUF of accepted connections (bytes); 0 = kernel default")
    int receiveBufferSize() default 128 * 1024;

    /**
     * With a postcopy-preempt channel, requested pages (and those requested while in flight) bypass the main
     * connection, so its depth no longer sets a guest's wait; a deeper buffer means fewer, larger reads
     * (measured: stream alone ~1.45 -> ~1.7 GB/s).
     */
    @AttributeDefinition(description = "SO_RCVBUF (bytes) a main connection gets once a postcopy-preempt channel is tied "
            + "to it; 0 = keep receiveBufferSize")
    int preemptReceiveBufferSize() default 1 << 20;

    @AttributeDefinition(description = "Ended migrations kept for postcopy:status (per service and per listener); the "
            + "oldest are dropped when a new migration starts")
    int retainEndedMigrations() default 64;

    /**
     * A requested page passes the source's return-path thread and the destination's postcopy-preempt channel
     * thread; below 0 they win the CPU from the guest's and the bulk stream's threads.
     */
    @AttributeDefinition(description = "Nice value (-20..19) of the threads a requested page passes (source return path, "
            + "destination postcopy-preempt channel), and of the destination's resume thread and stream thread during the "
            + "switch; needs CAP_SYS_NICE below 0, else they keep the default (logged once)")
    int urgentThreadNice() default -5;

    @AttributeDefinition(description = "0: off (the nice value applies). 1..99: the threads a requested page passes run "
            + "SCHED_FIFO at that priority while within realtimeCpuPercent, never waiting for a CPU behind ordinary "
            + "threads (measured: fault-to-placement p99 ~3-4 ms -> ~0.5 ms on 2 busy CPUs); needs CAP_SYS_NICE")
    int urgentThreadFifoPriority() default 1;

    /**
     * Real-time threads fed from the network must not be able to starve the host: past this budget they drop to
     * their nice value until it refills (io.postcopy.uffd.UrgentThread).
     */
    @AttributeDefinition(description = "Percent of one CPU (1..100) that all SCHED_FIFO urgent threads of this JVM "
            + "(fault threads included) may use together, averaged, in bursts of at most 10 ms; over it they run at "
            + "their nice value until the budget refills")
    int realtimeCpuPercent() default 50;

    /**
     * On a host where the stream and a busy guest share CPUs, equal weights let a guest woken from a fault wait
     * milliseconds behind the stream threads (measured on 2 CPUs: 0 -> 10 took the guest's access p99 from ~1.5
     * to ~0.9 ms and the stream from ~0.6 to ~0.45 GB/s). Unlike a bandwidth cap it leaves no CPU idle. The
     * default yields only while the guest faults, so a stream no guest waits on keeps its full speed.
     */
    @AttributeDefinition(description = "Nice value (0..19) of the threads that move background pages while a guest may "
            + "wait on them (destination stream thread from RUN, source sender in postcopy): above 0 guests win the "
            + "CPU from the stream; 0 = unchanged; -1 = bulkThreadYieldNice while the guest faults (page requests in "
            + "the last 50 ms, with a postcopy-preempt channel), unchanged otherwise")
    int bulkThreadNice() default -1;

    @AttributeDefinition(description = "With bulkThreadNice -1: the nice value (1..19) of the threads that move "
            + "background pages while the guest faults")
    int bulkThreadYieldNice() default 5;

    /**
     * Measured with benchmarks/e2e (docs/performance.md, "Prefetch that learns"): a sequential guest faults far
     * less, a random one pushes next to nothing.
     */
    @AttributeDefinition(description = "Postcopy, source: the largest window of pages (4 KiB each) pushed right after a "
            + "requested page on the channel that serves requests, learned per RAM block (it grows while the guest's "
            + "requests follow each other and drops to nothing when they do not); 0 = off, at most 4096. A migration "
            + "may set its own (postcopy:migrate --prefetch)")
    int prefetchMaxPages() default 64;

    @AttributeDefinition(description = "Bytes of contiguous pages gathered before one placement; 4096 = one UFFDIO_COPY per page")
    int stagingBatchSize() default 65536;

    @AttributeDefinition(description = "RAM (MiB) one incoming migration may announce; 0 = the host's MemAvailable less "
            + "ramReserveMiB, read when its block list arrives. Checked before any block or bitmap is made")
    int maxMigrationRamMiB() default 0;

    @AttributeDefinition(description = "RAM (MiB) all live incoming migrations together may still need (announced, not "
            + "yet received); 0 = MemAvailable less ramReserveMiB")
    int maxIncomingRamMiB() default 0;

    @AttributeDefinition(description = "MemAvailable (MiB) kept for the JVM and the host when the RAM limits are 0")
    int ramReserveMiB() default 1024;

    @AttributeDefinition(description = "Connections a listener routes or runs at once; more are closed at accept")
    int maxConnectionsPerListener() default 64;

    @AttributeDefinition(description = "How long (ms) a new connection may take to show what it is: a migration stream's "
            + "magic, or a channel's token")
    int firstBytesTimeoutMillis() default 10_000;

    @AttributeDefinition(description = "How long (ms) a migration stream may take from its first bytes to its block list")
    int handshakeTimeoutMillis() default 30_000;

    @AttributeDefinition(description = "Device-state bytes (MiB, loaded and opaque together) one incoming migration may send")
    int maxDeviceStateMiB() default 256;

    @AttributeDefinition(description = "TLS for every listener and migration that does not give its own: a QEMU-style "
            + "credentials directory (ca-cert.pem, server-cert.pem, server-key.pem, client-cert.pem, client-key.pem, "
            + "optional ca-crl.pem); empty: none")
    String tlsCredentialsDir() default "";

    @AttributeDefinition(description = "With tlsCredentialsDir: the client certificate subjects listeners accept, "
            + "separated by ';' (e.g. CN=src1,O=example;CN=src2,O=example); empty: any certificate the CA signed")
    String tlsAuthorizedSubjects() default "";

    @AttributeDefinition(description = "In postcopy between our own source and destination: a connection silent this "
            + "long (ms) is lost and the migration pauses (the source PINGs at a third of it)")
    int silenceTimeoutMillis() default 10_000;
}
