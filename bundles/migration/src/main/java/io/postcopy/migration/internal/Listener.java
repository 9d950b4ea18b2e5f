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
                Destination d = service.startIncoming(c, options, this::extraChannel, this::atPostcopySwitch, this::postcopyChannelOf);
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
     * {@code extra} does not start a migration stream ({@code seen}: its first 4 bytes as the codec shows
     * them). A QEMU source opens such an extra connection with magic 0x11223344 right after its main one only
     * with multifd, which we do not support: the main stream (a live connection from the same host accepted
     * just before) would wait for pages that travel on the channel we refuse, so end it too, naming the
     * capability, instead of leaving QEMU hanging.
     *
     * @return {@code null}: {@code extra} keeps its own reason (the codec's multifd refusal, or its own error)
     */
    private String extraChannel(Destination extra, String seen) {
        if (seen == null || !seen.startsWith("0x11223344")) return null;
        for (Destination main : siblingsBefore(extra)) {
            main.refuse("QEMU opened a multifd channel (" + extra.id() + ", " + extra.peer()
                    + ") for this migration: capability multifd is not supported, turn it off on the source");
        }
        return null;
    }

    /** Live connections from {@code extra}'s host accepted before it, within {@link #EXTRA_SIBLING_NANOS}, newest first. */
    private List<Destination> siblingsBefore(Destination extra) {
        List<Destination> l = new java.util.ArrayList<>();
        for (IncomingMigration m : migrations) {
            if (m != extra && m instanceof Destination main && !main.state().isFinal() && main.preemptOf == null
                    && java.util.Objects.equals(main.remoteHost, extra.remoteHost)
                    && main.acceptedNanos <= extra.acceptedNanos
                    && extra.acceptedNanos - main.acceptedNanos < EXTRA_SIBLING_NANOS) {
                l.add(main);
            }
        }
        l.sort(java.util.Comparator.comparingLong((Destination d) -> d.acceptedNanos).reversed());
        return l;
    }

    /**
     * {@code extra} stayed silent for {@link Destination#EXTRA_SILENCE_MILLIS}, or was tied already: QEMU's
     * postcopy-preempt channel (opened right after the main connection by {@code postcopy_preempt_setup}, no
     * header, silent until the first requested page in postcopy) of the newest live connection from the same
     * host accepted just before it that has none yet. QEMU 7.2 has no handshake on this channel, so the match
     * is by host and time; two sources on one host starting within the same moment could be crossed.
     *
     * @return the migration {@code extra} carries requested pages for, or {@code null} (then it is read as a
     *     stream of its own)
     */
    private synchronized Destination postcopyChannelOf(Destination extra) {
        if (extra.preemptOf != null) return extra.preemptOf;
        for (Destination main : siblingsBefore(extra)) {
            if (main.hasPostcopyChannel()) continue;
            tie(main, extra);
            return main;
        }
        return null;
    }

    /**
     * {@code main} switches to postcopy (its first discard or package), possibly before the silence of its
     * preempt channel has lasted {@link Destination#EXTRA_SILENCE_MILLIS}: a live connection from its host
     * accepted after it (within {@link #EXTRA_SIBLING_NANOS}) that has not sent a byte yet is that channel
     * (a migration stream starts with its header at once). Never refuses.
     */
    private synchronized String atPostcopySwitch(Destination main) {
        if (main.hasPostcopyChannel()) return null;
        for (IncomingMigration m : migrations) {
            if (m != main && m instanceof Destination extra && !extra.state().isFinal() && !extra.anyBytes
                    && extra.preemptOf == null && !extra.hasPostcopyChannel()
                    && java.util.Objects.equals(main.remoteHost, extra.remoteHost)
                    && main.acceptedNanos <= extra.acceptedNanos
                    && extra.acceptedNanos - main.acceptedNanos < EXTRA_SIBLING_NANOS) {
                tie(main, extra);
                break;
            }
        }
        return null;
    }

    /** {@code extra} is {@code main}'s postcopy channel from now on: no migration of its own. */
    private void tie(Destination main, Destination extra) {
        main.attachPostcopyChannel(extra);
        migrations.remove(extra);
        service.forget(extra);
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
