package io.postcopy.migration.internal.channel;

import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.internal.AbstractMigration;
import io.postcopy.migration.internal.destination.Destination;
import io.postcopy.migration.internal.MigrationServiceImpl;
import io.postcopy.migration.internal.Refused;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * An {@link IncomingListener}: accepts connections and routes each one, on a thread of its own, by what it proves to
 * be ({@link Router}: by its first bytes; with {@link IncomingOptions#qemuPreempt()}, {@link QemuRule}: by accept
 * order). At most {@code maxConnectionsPerListener} connections are routed or run at once; more are closed at accept.
 * An accept that fails (too many open files) is retried after a pause, logged once per run of failures.
 *
 * <p>Threads: the acceptor {@code postcopy-listen-<port>} accepts and places each connection; a routing thread
 * {@code postcopy-route-<port>} per connection routes it and then runs it. The migrations it routed call back from
 * their own threads (channel tokens, the multifd note) and from the thread that asks one to recover; the API is for
 * any thread.
 */
public final class Listener implements IncomingListener, io.postcopy.migration.internal.destination.RoutingListener {
    private final MigrationServiceImpl service;
    private final ServerSocketChannel server;
    private final IncomingOptions options;
    private final InetSocketAddress address;
    private final List<IncomingMigration> migrations = new CopyOnWriteArrayList<>();
    private final AtomicInteger connections = new AtomicInteger();
    private final FirstBytes firstBytes;
    private final ChannelTokens tokens = new ChannelTokens();
    private final Router router;
    /** QEMU's rule, or null: our source's channels are routed by token. */
    private final QemuRule qemu;
    private final Recovery recovery;

    /** {@code tls}: TLS for every connection, or null. */
    public Listener(MigrationServiceImpl service, ServerSocketChannel server, IncomingOptions options, Tls tls) throws IOException {
        this.service = service;
        this.server = server;
        this.options = options;
        this.address = (InetSocketAddress) server.getLocalAddress();
        this.firstBytes = new FirstBytes(service, tls, address.getPort());
        this.router = new Router(service, this, options, migrations, tokens, firstBytes);
        this.qemu = options.qemuPreempt() ? new QemuRule(router, firstBytes) : null;
        this.recovery = new Recovery(options, firstBytes);
        Thread acceptor = new Thread(this::accept, "postcopy-listen-" + address.getPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    private void accept() {
        AbstractMigration.LOG.info("listening for migrations on {}{}{}", address, firstBytes.overTls() ? " (TLS)" : "",
                qemu != null ? " (QEMU postcopy-preempt: one migration at a time)" : "");
        int failures = 0;
        for (;;) {
            SocketChannel c;
            try {
                c = server.accept();
                if (failures > 0) AbstractMigration.LOG.info("listener {}: accepting again after {} failures", address.getPort(), failures);
                failures = 0;
            } catch (ClosedChannelException e) {
                break;
            } catch (IOException | RuntimeException e) {
                // e.g. EMFILE: the connection waits in the backlog; try again in a moment, without flooding the log
                if (failures++ == 0) AbstractMigration.LOG.warn("listener {}: accept failed, retrying: {}", address.getPort(), e.toString());
                if (!server.isOpen()) break;
                LockSupport.parkNanos(100_000_000L);
                continue;
            }
            route(c);
        }
        AbstractMigration.LOG.info("no longer listening on {}", address);
    }

    /** On the acceptor thread: within the connection limit, {@code c}'s route starts on a thread of its own. */
    private void route(SocketChannel c) {
        String peer = FirstBytes.peerOf(c);
        int max = service.settings().limits().maxConnections();
        if (connections.incrementAndGet() > max) {
            connections.decrementAndGet();
            firstBytes.refuse(c, peer, "more than " + max + " connections at once on this listener");
            return;
        }
        Runnable route = qemu != null ? qemu.route(c, peer) : () -> router.route(c, peer, null);
        Thread t = new Thread(() -> {
            try {
                route.run();
            } finally {
                connections.decrementAndGet();
            }
        }, "postcopy-route-" + address.getPort());
        t.setDaemon(true);
        t.start();
    }

    // ---- for the migrations this listener routed (their stream threads) ----

    /** {@code d}'s CHANNEL_TOKEN, from its main stream. A token may serve one migration only. */
    @Override
    public void announce(byte[] token, Destination d) throws Refused {
        tokens.announce(token, d);
    }

    /** A paused migration's token is good for one more channel (the resumed source opens it again). */
    @Override
    public void reannounce(byte[] token, Destination d) {
        tokens.reannounce(token, d);
    }

    /** From a migration that has ended: its token is no longer good. */
    @Override
    public void ended(Destination d) {
        tokens.ended(d);
    }

    /** {@link IncomingMigration#recover}: a port of its own where {@code d}'s QEMU source resumes. */
    @Override
    public InetSocketAddress recover(Destination d, InetSocketAddress bind) {
        return recovery.recover(d, bind);
    }

    /**
     * Whether a multifd channel from {@code host} was refused since {@code sinceNanos}: QEMU closes its main stream
     * when one of its multifd channels is closed, which is the reason its migration ended.
     */
    @Override
    public boolean multifdRefusedFrom(InetAddress host, long sinceNanos) {
        return router.multifdRefusedFrom(host, sinceNanos);
    }

    // ---- IncomingListener ----

    @Override public InetSocketAddress address() { return address; }

    @Override public int port() { return address.getPort(); }

    @Override public List<IncomingMigration> migrations() { return List.copyOf(migrations); }

    @Override public IncomingOptions options() { return options; }

    @Override
    public void close() {
        FirstBytes.close(server);
        service.removeListener(this);
    }

    @Override
    public String toString() {
        return "IncomingListener[" + address + ", " + migrations.size() + " migrations]";
    }
}
