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
                Destination d = service.startIncoming(c, options, this::extraChannel, this::silentExtraChannel);
                migrations.add(d);
            }
        } catch (ClosedChannelException e) {
            // closed
        } catch (IOException | RuntimeException e) {
            AbstractMigration.LOG.error("listener on {} stopped: {}", address, e.toString());
        }
        AbstractMigration.LOG.info("no longer listening on {}", address);
    }

    /** How long before an extra channel its main connection was accepted, at most (QEMU opens them at once). */
    static final long EXTRA_SIBLING_NANOS = 10_000_000_000L;

    /**
     * {@code extra} does not start a migration stream ({@code seen}: its first 4 bytes, or {@code null} when it
     * stayed silent). A QEMU source opens such extra connections right after its main one only with a
     * capability we do not support: multifd (magic 0x11223344, {@code MultiFDInit_t}), postcopy-preempt
     * (a channel silent until the first requested page, then RAM page records without a stream header). The
     * main stream (a live connection from the same host accepted just before) would wait for pages that travel
     * on the channel we refuse, so end it too, naming the capability, instead of leaving QEMU hanging.
     *
     * @return the reason for {@code extra} itself, or {@code null} to keep its own (the codec's multifd
     *     refusal; a lone connection that is no migration stream and belongs to none: its own error)
     */
    private String extraChannel(Destination extra, String seen) {
        boolean multifd = seen != null && seen.startsWith("0x11223344");
        String capability = multifd ? "multifd" : "postcopy-preempt";
        List<String> mains = new java.util.ArrayList<>();
        for (IncomingMigration m : migrations) {
            if (m != extra && m instanceof Destination main && !main.state().isFinal()
                    && java.util.Objects.equals(main.remoteHost, extra.remoteHost)
                    && main.acceptedNanos <= extra.acceptedNanos
                    && extra.acceptedNanos - main.acceptedNanos < EXTRA_SIBLING_NANOS) {
                main.refuse("QEMU opened a " + capability + " channel (" + extra.id() + ", " + extra.peer()
                        + ") for this migration: capability " + capability + " is not supported, turn it off on the source");
                mains.add(main.id());
            }
        }
        if (multifd || mains.isEmpty()) return null;
        return "an extra connection from the source of " + String.join(", ", mains) + " ("
                + (seen == null ? "nothing sent within " + Destination.EXTRA_SILENCE_MILLIS + " ms"
                        : "first bytes " + seen + ", not a migration stream")
                + "): QEMU's postcopy-preempt channel; capability postcopy-preempt is not supported, turn it off on the source";
    }

    /**
     * {@code main} switches to postcopy: a live connection from its host accepted after it (within
     * {@link #EXTRA_SIBLING_NANOS}) that has not sent a byte yet is QEMU's postcopy-preempt channel (a
     * migration stream starts with its header at once), even if its silence has not lasted
     * {@link Destination#EXTRA_SILENCE_MILLIS} yet. Refuses it and returns the reason for {@code main}.
     */
    private String silentExtraChannel(Destination main) {
        String reason = null;
        for (IncomingMigration m : migrations) {
            if (m != main && m instanceof Destination extra && !extra.state().isFinal() && !extra.anyBytes
                    && java.util.Objects.equals(main.remoteHost, extra.remoteHost)
                    && main.acceptedNanos <= extra.acceptedNanos
                    && extra.acceptedNanos - main.acceptedNanos < EXTRA_SIBLING_NANOS) {
                extra.refuse("an extra connection from the source of " + main.id() + " (nothing sent before the switch"
                        + " to postcopy): QEMU's postcopy-preempt channel; capability postcopy-preempt is not supported,"
                        + " turn it off on the source");
                reason = "QEMU opened a postcopy-preempt channel (" + extra.id() + ", " + extra.peer()
                        + ") for this migration: capability postcopy-preempt is not supported, turn it off on the source";
            }
        }
        return reason;
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
