package io.postcopy.migration.internal;

import io.postcopy.fault.FaultStatistics;
import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationState;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** State, failure and completion shared by both directions. One INFO line per state change. */
public abstract class AbstractMigration implements Migration {
    public static final Logger LOG = LoggerFactory.getLogger("io.postcopy.migration");
    public static final int TARGET_PAGE = 4096;
    public static final int TARGET_SHIFT = 12;

    final String id;
    public volatile String peer = "?";
    private volatile MigrationState state = MigrationState.SETUP;
    private volatile String failure;
    /** The reason given with the last state change, if any. */
    private volatile String reason;
    private final CountDownLatch done = new CountDownLatch(1);
    public final long startNanos = System.nanoTime();
    volatile long postcopyStartNanos, endNanos;

    /** The service that made this migration: its settings, its timers, and its listeners of state changes. */
    public final MigrationServiceImpl service;

    protected AbstractMigration(String id, MigrationServiceImpl service) {
        this.id = id;
        this.service = service;
    }

    @Override public String id() { return id; }

    @Override public String peer() { return peer; }

    /** The peer's id for this migration, once it said it (only a peer of ours does). */
    public volatile String peerId;

    @Override public java.util.Optional<String> peerId() { return java.util.Optional.ofNullable(peerId); }

    @Override public MigrationState state() { return state; }

    @Override public Optional<String> failure() { return Optional.ofNullable(failure); }

    @Override public Optional<String> reason() { return Optional.ofNullable(state.isFinal() ? failure : reason); }

    @Override public Optional<FaultStatistics> statistics() { return Optional.empty(); }

    /** Moves to {@code next} unless already final; false when it was final. */
    public synchronized boolean enter(MigrationState next, String reason) {
        MigrationState s = state;
        if (s.isFinal()) return false;
        if (s == next) return true;
        if (next == MigrationState.POSTCOPY && postcopyStartNanos == 0) postcopyStartNanos = System.nanoTime();
        if (next.isFinal()) {
            endNanos = System.nanoTime();
            if (reason != null) failure = reason;
        }
        state = next;
        this.reason = reason;
        if (reason == null) {
            LOG.info("migration {} ({}): {} -> {}", id, peer, s, next);
        } else {
            LOG.info("migration {} ({}): {} -> {}: {}", id, peer, s, next, reason);
        }
        service.changed(this, s, next, reason);    // under the state lock: listeners see the changes in order
        if (next.isFinal()) done.countDown();
        return true;
    }

    /** The RAM blocks this migration moves, by name (an incoming one's once its block list arrived). */
    public abstract java.util.List<String> blockNames();

    /** {@code blocks}' names; empty for null (not known yet). */
    public static java.util.List<String> idstrs(java.util.List<io.postcopy.ramblock.RamBlock> blocks) {
        if (blocks == null) return java.util.List.of();
        return java.util.List.copyOf(blocks).stream().map(io.postcopy.ramblock.RamBlock::idstr).toList();
    }

    /** The event for a state entered at {@code atMillis}, with the figures as they are now. */
    io.postcopy.migration.MigrationEvent event(MigrationState previous, MigrationState next, String reason, long atMillis) {
        io.postcopy.migration.MigrationProgress p = progress();
        long e = endNanos;
        double seconds = ((e != 0 ? e : System.nanoTime()) - startNanos) / 1e9;
        String p0 = peer;      // an accepted socket's address prints as "/host:port"
        return new io.postcopy.migration.MigrationEvent(id, this instanceof io.postcopy.migration.OutgoingMigration ? "outgoing" : "incoming",
                p0.startsWith("/") ? p0.substring(1) : p0, previous, next, reason, blockNames(), p.bytes(), p.totalPages(), p.remainingPages(),
                seconds > 0 ? p.bytes() / seconds : 0, atMillis);
    }

    public boolean fail(String reason) {
        return enter(MigrationState.FAILED, reason);
    }

    @Override
    public MigrationState awaitCompletion(Duration timeout) throws InterruptedException {
        done.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
        return state;
    }

    public long postcopyNanos() {
        long s = postcopyStartNanos;
        if (s == 0) return 0;
        long e = endNanos;
        return (e != 0 ? e : System.nanoTime()) - s;
    }

    public double throughput(long postcopyPageBytes, long allPageBytes) {
        long pn = postcopyNanos();
        // a postcopy phase that moved no page (precopy had sent everything) says nothing: the whole migration's rate
        if (pn > 0 && postcopyPageBytes > 0) return postcopyPageBytes * 1e9 / pn;
        long e = endNanos;
        long n = (e != 0 ? e : System.nanoTime()) - startNanos;
        return n > 0 ? allPageBytes * 1e9 / n : 0;
    }

    /** The message a failure is reported with. */
    public static String describe(Throwable t) {
        String m = t.getMessage();
        if (t instanceof io.postcopy.codec.CodecException) return m;
        if (m == null || m.isEmpty()) return t.getClass().getSimpleName();
        if (t instanceof javax.net.ssl.SSLException && t.getCause() != null && t.getCause() != t) {
            // BoringSSL's engine wraps what our trust manager said in "General OpenSslEngine problem": say the cause
            Throwable c = t.getCause();
            if (c.getMessage() != null && !m.contains(c.getMessage())) m = m + " (" + c.getMessage() + ")";
        }
        if (t instanceof java.io.IOException) return t.getClass().getSimpleName() + ": " + m;
        return m;
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + id + ", " + peer + ", " + state + "]";
    }
}
