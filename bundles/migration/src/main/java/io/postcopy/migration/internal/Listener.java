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
final class Listener implements IncomingListener, ExtraChannels {
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
                Destination d = service.startIncoming(c, options, this);
                Settings.pruneEnded(migrations, service.settings().retainEndedMigrations());
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
     * A QEMU source opens an extra connection with magic 0x11223344 right after its main one only with
     * multifd, which we do not support: the main stream (a live connection from the same host accepted just
     * before) would wait for pages that travel on the channel we refuse, so end it too, naming the capability,
     * instead of leaving QEMU hanging. Other extra connections keep their own error.
     */
    @Override
    public String notAStream(Destination extra, String seen) {
        if (seen == null || !seen.startsWith("0x11223344")) return null;
        for (Destination main : siblingsBefore(extra, false, false)) {
            main.refuse("QEMU opened a multifd channel (" + extra.id() + ", " + extra.peer()
                    + ") for this migration: capability multifd is not supported, turn it off on the source");
        }
        return null;
    }

    /**
     * Connections from {@code extra}'s host accepted before it, within {@link #EXTRA_SIBLING_NANOS}, that are
     * no extra channel themselves (and, if {@code untied}, have no postcopy channel yet), newest first; live
     * ones only unless {@code ended}. A migration that ended without its channel tied (it completed on the main
     * stream alone) still owns that channel, whose EOS or late pages may come after the end: counting it keeps
     * that channel from being tied to another live migration by host and time.
     */
    private List<Destination> siblingsBefore(Destination extra, boolean untied, boolean ended) {
        List<Destination> l = new java.util.ArrayList<>();
        for (IncomingMigration m : migrations) {
            if (m != extra && m instanceof Destination main && (ended || !main.state().isFinal()) && main.preemptOf == null
                    && !(untied && main.hasPostcopyChannel()) && sibling(main, extra)) {
                l.add(main);
            }
        }
        l.sort(java.util.Comparator.comparingLong((Destination d) -> d.acceptedNanos).reversed());
        return l;
    }

    private static boolean sibling(Destination main, Destination extra) {
        return java.util.Objects.equals(main.remoteHost, extra.remoteHost) && main.acceptedNanos <= extra.acceptedNanos
                && extra.acceptedNanos - main.acceptedNanos < EXTRA_SIBLING_NANOS;
    }

    /**
     * QEMU's postcopy-preempt channel ({@code postcopy_preempt_setup}) comes right after its main connection,
     * carries no header and stays silent until the first requested page in postcopy. QEMU 7.2 has no handshake
     * on it, so it is tied by host and time when only one live migration from that host could own it, and
     * otherwise by its first page: the migration that requested that page.
     */
    @Override
    public synchronized Destination postcopyChannelOf(Destination extra) {
        if (extra.preemptOf != null) return extra.preemptOf;
        List<Destination> c = siblingsBefore(extra, true, true);
        if (c.size() != 1 || c.get(0).state().isFinal()) return null;   // an ended one: wait for its first record
        tie(c.get(0), extra);
        return c.get(0);
    }

    @Override
    public synchronized int candidates(Destination extra) {
        return extra.preemptOf != null ? 1 : siblingsBefore(extra, true, true).size();
    }

    @Override
    public synchronized Destination postcopyChannelByFirstPage(Destination extra, String block, long offset) {
        if (extra.preemptOf != null) return extra.preemptOf;
        Destination found = null;
        for (Destination main : siblingsBefore(extra, true, true)) {
            if (main.requestedLately(block, offset)) {
                if (found != null) return null;     // two migrations requested that very page: no guess
                found = main;
            }
        }
        if (found == null) {
            // not requested (lately): the one migration that has a block of that name, if only one has
            for (Destination main : siblingsBefore(extra, true, true)) {
                if (main.hasStreamBlock(block)) {
                    if (found != null) return null;
                    found = main;
                }
            }
        }
        if (found != null) tie(found, extra);
        return found;
    }

    @Override
    public synchronized void forgetUnused(Destination extra) {
        migrations.remove(extra);
        service.forget(extra);
    }

    /**
     * {@code main} switches to postcopy, possibly before the silence of its preempt channel has lasted
     * {@link Destination#EXTRA_SILENCE_MILLIS}: a live connection from its host accepted after it that has not
     * sent a byte yet (a migration stream starts with its header at once) and could belong to no other
     * migration is that channel.
     */
    @Override
    public synchronized void atPostcopySwitch(Destination main) {
        if (main.hasPostcopyChannel()) return;
        for (Destination extra : silentAfter(main)) {
            List<Destination> c = siblingsBefore(extra, true, true);
            if (c.size() == 1 && c.get(0) == main) {
                tie(main, extra);
                return;
            }
        }
    }

    /**
     * Not only silent connections: one whose first page has arrived but is not read yet, or read but not yet
     * tied, may still become {@code main}'s channel, so only those found to be streams of their own are out.
     */
    @Override
    public synchronized boolean untiedChannelFor(Destination main) {
        return !main.hasPostcopyChannel() && !untiedAfter(main, extra -> !extra.isStream).isEmpty();
    }

    /** Live connections from {@code main}'s host accepted after it that have sent nothing and are tied to none. */
    private List<Destination> silentAfter(Destination main) {
        return untiedAfter(main, Destination::silentSoFar);
    }

    /** Live connections from {@code main}'s host accepted after it, tied to none, that pass {@code test}. */
    private List<Destination> untiedAfter(Destination main, java.util.function.Predicate<Destination> test) {
        List<Destination> l = new java.util.ArrayList<>();
        for (IncomingMigration m : migrations) {
            if (m != main && m instanceof Destination extra && !extra.state().isFinal() && extra.preemptOf == null
                    && !extra.hasPostcopyChannel() && sibling(main, extra) && test.test(extra)) {
                l.add(extra);
            }
        }
        return l;
    }

    /**
     * {@code extra} is {@code main}'s postcopy channel from now on: no migration of its own. The channel of a
     * migration that has ended is only marked as such, for its thread to drain and close.
     */
    private void tie(Destination main, Destination extra) {
        if (main.state().isFinal()) {
            extra.preemptOf = main;
            extra.ofEndedMigration = true;
        } else {
            main.attachPostcopyChannel(extra);
        }
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
