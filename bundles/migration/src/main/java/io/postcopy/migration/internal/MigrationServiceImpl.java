package io.postcopy.migration.internal;

import io.postcopy.fault.FaultService;
import io.postcopy.migration.DeviceStateHandler;
import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationEvent;
import io.postcopy.migration.MigrationException;
import io.postcopy.migration.MigrationListener;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.MigrationService;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.migration.OutgoingOptions;
import io.postcopy.migration.internal.channel.Listener;
import io.postcopy.migration.internal.channel.Tls;
import io.postcopy.migration.internal.source.Outgoing;
import io.postcopy.migration.internal.destination.Destination;
import io.postcopy.ramblock.RamBlockRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/** The migration service: owns the listeners and the migrations of one registry. */
public final class MigrationServiceImpl implements io.postcopy.migration.standalone.StandaloneMigrationService {
    private final RamBlockRegistry registry;
    private final FaultService faultService;
    private volatile Settings settings;
    private final List<DeviceStateHandler> handlers = new CopyOnWriteArrayList<>();
    private final List<Migration> migrations = new CopyOnWriteArrayList<>();
    private final List<IncomingListener> listeners = new CopyOnWriteArrayList<>();
    private final AtomicInteger outIds = new AtomicInteger(), inIds = new AtomicInteger();
    private final List<MigrationListener> migrationListeners = new CopyOnWriteArrayList<>();
    /**
     * Delivers state changes in the order they happened, off the migrations' own threads: one thread, which ends
     * after a second without events (a plain-Java service may never be closed, and an idle thread would then stay
     * until the service is garbage-collected and finalized).
     */
    private final java.util.concurrent.ThreadPoolExecutor events = new java.util.concurrent.ThreadPoolExecutor(1, 1,
            1, java.util.concurrent.TimeUnit.SECONDS, new java.util.concurrent.LinkedBlockingQueue<>(), r -> {
        Thread t = new Thread(r, "postcopy-events");
        t.setDaemon(true);
        return t;
    });

    {
        events.allowCoreThreadTimeOut(true);
    }

    public MigrationServiceImpl(RamBlockRegistry registry, FaultService faultService, Settings settings) {
        this.registry = registry;
        this.faultService = faultService;
        this.settings = settings;
    }

    public RamBlockRegistry registry() { return registry; }

    public FaultService faultService() { return faultService; }

    public Settings settings() { return settings; }

    public void configure(Settings s) {
        settings = s;
    }

    @Override
    public IncomingListener listen(InetSocketAddress bind, IncomingOptions options) {
        InetSocketAddress a = bind != null ? bind : new InetSocketAddress(settings.listenAddress(), 0);
        if (options.tls() == null && settings.limits().tls() != null) options = options.withTls(settings.limits().tls());
        if (options.tls() == null && !options.insecure() && (a.getAddress() == null || !a.getAddress().isLoopbackAddress())) {
            throw new MigrationException("refusing to listen on " + a.getHostString() + ":" + a.getPort() + " without TLS: anyone who reaches it could migrate "
                    + "into this host; give TLS credentials, or say insecure explicitly");
        }
        Tls tls = options.tls() == null ? null : Tls.load(options.tls(), true);
        try {
            ServerSocketChannel server = ServerSocketChannel.open();
            try {
                if (settings.receiveBufferSize() > 0) {
                    // set before bind/accept so that the window scale of accepted connections fits it, and the
                    // larger size a main connection gets with a preempt channel (startIncoming sets the smaller)
                    server.setOption(java.net.StandardSocketOptions.SO_RCVBUF,
                            Math.max(settings.receiveBufferSize(), settings.preemptReceiveBufferSize()));
                }
                server.bind(a);
                Listener l = new Listener(this, server, options, tls);
                listeners.add(l);
                return l;
            } catch (IOException | RuntimeException e) {
                server.close();
                throw e;
            }
        } catch (IOException e) {
            throw new MigrationException("cannot listen on " + a.getHostString() + ":" + a.getPort() + ": " + e.getMessage(), e);
        }
    }

    /**
     * A main stream the listener has recognised (its magic read): now it becomes a migration with an id. The
     * listener's routing thread runs it.
     */
    public Destination newIncoming(SocketChannel c, java.nio.channels.ByteChannel io, IncomingOptions options, Listener listener) {
        Settings s = settings;
        if (s.receiveBufferSize() > 0 && s.preemptReceiveBufferSize() > s.receiveBufferSize()) {
            try {
                c.setOption(java.net.StandardSocketOptions.SO_RCVBUF, s.receiveBufferSize());
            } catch (IOException e) {
                AbstractMigration.LOG.debug("SO_RCVBUF {} refused: {}", s.receiveBufferSize(), e.toString());
            }
        }
        Destination d = new Destination("in-" + inIds.incrementAndGet(), this, c, io, options, listener);
        Settings.pruneEnded(migrations, s.retainEndedMigrations());
        migrations.add(d);
        changed(d, null, MigrationState.SETUP, null);
        AbstractMigration.LOG.info("migration {}: a migration stream from {}", d.id(), d.peer());
        return d;
    }

    /** Runs {@code task} once after {@code millis} (deadlines); on one daemon thread of the service. */
    public void after(long millis, Runnable task) {
        try {
            timer.schedule(() -> {
                try {
                    task.run();
                } catch (RuntimeException e) {
                    AbstractMigration.LOG.warn("deadline task failed", e);
                }
            }, millis, java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException shuttingDown) {
            // the service is going away: its shutdown cancels what the deadline would have ended
        }
    }

    private final java.util.concurrent.ScheduledExecutorService timer =
            java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "postcopy-deadlines");
                t.setDaemon(true);
                return t;
            });

    /**
     * Admits an incoming migration's block list, or refuses it, before any block or bitmap exists: {@code normal}
     * bytes of 4 KiB-page RAM against the per-migration limit and, with what the other live incoming migrations
     * still need, against the total; {@code huge} bytes of blocks with their own page size against free huge pages.
     */
    public synchronized void admit(Destination d, long normal, long huge) throws Refused {
        Settings.Limits l = settings.limits();
        long avail = HostMemory.available();
        long reserve = (long) l.ramReserveMiB() << 20;
        String host = avail < 0 ? "MemAvailable unknown" : "MemAvailable " + mib(avail) + " less ramReserveMiB " + mib(reserve);
        long fromHost = avail < 0 ? Long.MAX_VALUE : Math.max(0, avail - reserve);
        long one = l.maxMigrationRamMiB() > 0 ? (long) l.maxMigrationRamMiB() << 20 : fromHost;
        if (normal > one) {
            throw new Refused("the block list announces " + mib(normal) + " of RAM; one migration may have " + mib(one)
                    + " (" + (l.maxMigrationRamMiB() > 0 ? "maxMigrationRamMiB" : host) + ")");
        }
        long others = 0;
        for (Migration m : migrations) {
            if (m != d && m instanceof Destination o && !o.state().isFinal()) others += o.outstandingRam();
        }
        long all = l.maxIncomingRamMiB() > 0 ? (long) l.maxIncomingRamMiB() << 20 : fromHost;
        if (others + normal > all) {
            throw new Refused("the block list announces " + mib(normal) + " of RAM; with the " + mib(others)
                    + " that live incoming migrations still need that is more than " + mib(all) + " ("
                    + (l.maxIncomingRamMiB() > 0 ? "maxIncomingRamMiB" : host) + ")");
        }
        if (huge > 0) {
            long free = HostMemory.hugePagesFree();
            if (huge > free) {
                throw new Refused("the block list announces " + mib(huge) + " of huge-page RAM; " + mib(Math.max(0, free))
                        + " of huge pages are free");
            }
        }
    }

    private static String mib(long bytes) {
        return bytes == Long.MAX_VALUE ? "no limit" : (bytes >> 20) + " MiB";
    }

    public void removeListener(IncomingListener l) {
        listeners.remove(l);
    }

    @Override
    public OutgoingMigration migrate(InetSocketAddress target, OutgoingOptions options) {
        if (options.tls() == null && settings.limits().tls() != null) options = options.withTls(settings.limits().tls());
        Tls tls = options.tls() == null ? null : Tls.load(options.tls(), false);
        Outgoing o = new Outgoing("out-" + outIds.incrementAndGet(), this, target, options, List.copyOf(handlers), tls);
        o.resolveBlocks();
        Settings.pruneEnded(migrations, settings.retainEndedMigrations());
        migrations.add(o);
        changed(o, null, MigrationState.SETUP, null);
        AbstractMigration.LOG.info("migration {}: to {}, {} mode", o.id(), o.peer(), options.mode());
        Thread t = new Thread(o::run, "postcopy-out-" + o.id());
        t.setDaemon(true);
        t.start();
        return o;
    }

    @Override
    public List<Migration> migrations() {
        return List.copyOf(migrations);
    }

    @Override
    public Optional<Migration> get(String id) {
        for (Migration m : migrations) if (m.id().equals(id)) return Optional.of(m);
        return Optional.empty();
    }

    @Override
    public String tlsEngine() {
        return Tls.describeEngine();
    }

    @Override
    public List<IncomingListener> listeners() {
        return List.copyOf(listeners);
    }

    @Override
    public void addDeviceStateHandler(DeviceStateHandler handler) {
        String idstr = handler.idstr();
        if (idstr == null || idstr.isEmpty() || idstr.length() > 255 || !idstr.chars().allMatch(c -> c >= 0x20 && c <= 0x7e)) {
            throw new IllegalArgumentException("device idstr must be 1..255 printable ASCII characters: " + idstr);
        }
        for (DeviceStateHandler h : handlers) {
            if (h.idstr().equals(idstr) && h.instanceId() == handler.instanceId()) {
                throw new IllegalArgumentException("a handler for " + idstr + "/" + handler.instanceId() + " is already present");
            }
        }
        handlers.add(handler);
    }

    @Override
    public void removeDeviceStateHandler(DeviceStateHandler handler) {
        handlers.remove(handler);
    }

    public DeviceStateHandler handler(String idstr, int instanceId) {
        for (DeviceStateHandler h : handlers) if (h.idstr().equals(idstr) && h.instanceId() == instanceId) return h;
        return null;
    }

    /**
     * Closes the listeners, cancels every running migration and waits (up to 30 s each) until they have ended,
     * so that their threads have let go of the blocks before the registry goes (component deactivation).
     */
    @Override
    public void close() {
        timer.shutdownNow();
        events.shutdown();      // what is queued is still told
        for (IncomingListener l : new ArrayList<>(listeners)) l.close();
        for (Migration m : migrations) if (!m.state().isFinal()) m.cancel();
        for (Migration m : migrations) {
            try {
                if (!m.awaitCompletion(java.time.Duration.ofSeconds(30)).isFinal())
                    AbstractMigration.LOG.error("migration {} did not end within 30 s of its cancel", m.id());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Whiteboard (and plain Java): {@code l} is told of every state change from now on. */
    @Override
    public void addMigrationListener(MigrationListener l) {
        migrationListeners.add(l);
    }

    @Override
    public void removeMigrationListener(MigrationListener l) {
        migrationListeners.remove(l);
    }

    /**
     * {@code m} entered {@code next}: queued for the listeners, in order. Called with the migration's state lock
     * held, so that two changes are queued as they happened; the event itself is built on the event thread.
     */
    public void changed(AbstractMigration m, MigrationState previous, MigrationState next, String reason) {
        if (migrationListeners.isEmpty()) return;
        long at = System.currentTimeMillis();
        try {
            events.execute(() -> {
                MigrationEvent e = m.event(previous, next, reason, at);
                for (MigrationListener l : migrationListeners) {
                    try {
                        l.migrationChanged(e);
                    } catch (RuntimeException ex) {
                        AbstractMigration.LOG.warn("migration listener {} failed on {} {}: {}", l, e.id(), e.state(), ex.toString());
                    }
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException shutDown) {
            // the service is going away
        }
    }
}
