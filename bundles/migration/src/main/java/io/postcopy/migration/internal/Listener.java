package io.postcopy.migration.internal;

import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** Accepts connections one after another; each runs as its own migration on its own thread. */
final class Listener implements IncomingListener {
    private final MigrationServiceImpl service;
    private final ServerSocketChannel server;
    private final IncomingOptions options;
    private final InetSocketAddress address;
    private final List<IncomingMigration> migrations = new CopyOnWriteArrayList<>();
    private final Thread acceptor;

    Listener(MigrationServiceImpl service, ServerSocketChannel server, IncomingOptions options) throws IOException {
        this.service = service;
        this.server = server;
        this.options = options;
        this.address = (InetSocketAddress) server.getLocalAddress();
        this.acceptor = new Thread(this::accept, "postcopy-listen-" + address.getPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    private void accept() {
        AbstractMigration.LOG.info("listening for migrations on {}", address);
        try {
            for (;;) {
                SocketChannel c = server.accept();
                Destination d = service.startIncoming(c, options, this::multifdChannel);
                migrations.add(d);
            }
        } catch (ClosedChannelException e) {
            // closed
        } catch (IOException | RuntimeException e) {
            AbstractMigration.LOG.error("listener on {} stopped: {}", address, e.toString());
        }
        AbstractMigration.LOG.info("no longer listening on {}", address);
    }

    /** How long before a multifd channel its main connection was accepted, at most (QEMU opens them at once). */
    static final long MULTIFD_SIBLING_NANOS = 10_000_000_000L;

    /**
     * {@code extra} began with QEMU's multifd magic: the source has the multifd capability, so the main
     * stream it belongs to (a live connection from the same host accepted just before) would wait for pages
     * that travel on channels we refuse. End it too, naming the capability, instead of leaving it hanging.
     */
    private void multifdChannel(Destination extra) {
        for (IncomingMigration m : migrations) {
            if (m != extra && m instanceof Destination main && !main.state().isFinal()
                    && java.util.Objects.equals(main.remoteHost, extra.remoteHost)
                    && main.acceptedNanos <= extra.acceptedNanos
                    && extra.acceptedNanos - main.acceptedNanos < MULTIFD_SIBLING_NANOS) {
                main.refuse("QEMU opened a multifd channel (" + extra.id() + ", " + extra.peer()
                        + ") for this migration: capability multifd is not supported, turn it off on the source");
            }
        }
    }

    @Override public InetSocketAddress address() { return address; }

    @Override public int port() { return address.getPort(); }

    @Override public List<IncomingMigration> migrations() { return List.copyOf(migrations); }

    @Override
    public void close() {
        try {
            server.close();
        } catch (IOException ignored) {
            // closing
        }
        service.removeListener(this);
    }

    @Override
    public String toString() {
        return "IncomingListener[" + address + ", " + migrations.size() + " migrations]";
    }
}
