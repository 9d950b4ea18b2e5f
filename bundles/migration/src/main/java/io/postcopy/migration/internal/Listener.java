package io.postcopy.migration.internal;

import io.postcopy.codec.Wire;
import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.internal.destination.Destination;
import io.postcopy.migration.internal.destination.RoutingListener;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Accepts connections and routes each one, on a thread of its own, by what it proves to be (nothing is decided
 * by host, time or silence):
 * <ul>
 * <li>a migration's main stream (QEMU's magic): only now it becomes a migration, {@code in-N};</li>
 * <li>our source's extra channel: {@link Wire#CHANNEL_MAGIC} and a token that a live migration of this listener
 * announced on its main stream ({@code CHANNEL_TOKEN}): that migration's postcopy-preempt channel;</li>
 * <li>with {@link IncomingOptions#qemuPreempt()}, QEMU's rule: one migration at a time, and the connection
 * accepted right after its main connection is its postcopy-preempt channel;</li>
 * <li>anything else, or nothing within {@code firstBytesTimeoutMillis}: refused with one log line, nothing read
 * into memory, no migration.</li>
 * </ul>
 * At most {@code maxConnectionsPerListener} connections are routed or run at once; an accept that fails (too many
 * open files) is retried after a pause, logged once per run of failures.
 */
final class Listener implements IncomingListener, RoutingListener {

    private final MigrationServiceImpl service;
    private final ServerSocketChannel server;
    private final IncomingOptions options;
    private final InetSocketAddress address;
    private final List<IncomingMigration> migrations = new CopyOnWriteArrayList<>();
    private final Thread acceptor;
    private final AtomicInteger connections = new AtomicInteger();
    /** Tokens announced by live migrations and not yet presented by a channel; guarded by this. */
    private final List<Announced> tokens = new ArrayList<>();
    /** With qemuPreempt: the migration served now (its main connection, and its channel once accepted). */
    private QemuSlot slot;      // acceptor thread only

    private record Announced(byte[] token, Destination migration) {}

    /** QEMU's one migration at a time: the main connection and the next one. */
    private static final class QemuSlot {
        final SocketChannel mainSocket;
        volatile Destination main;
        volatile boolean refused;
        SocketChannel channel;

        QemuSlot(SocketChannel mainSocket) {
            this.mainSocket = mainSocket;
        }

        boolean over() {
            return refused || (main != null && main.ending());
        }
    }

    /** TLS for every connection, or null. */
    private final Tls tls;

    Listener(MigrationServiceImpl service, ServerSocketChannel server, IncomingOptions options, Tls tls) throws IOException {
        this.service = service;
        this.tls = tls;
        this.server = server;
        this.options = options;
        this.address = (InetSocketAddress) server.getLocalAddress();
        this.acceptor = new Thread(this::accept, "postcopy-listen-" + address.getPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    private void accept() {
        AbstractMigration.LOG.info("listening for migrations on {}{}{}", address, tls != null ? " (TLS)" : "",
                options.qemuPreempt() ? " (QEMU postcopy-preempt: one migration at a time)" : "");
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
                java.util.concurrent.locks.LockSupport.parkNanos(100_000_000L);
                continue;
            }
            route(c);
        }
        AbstractMigration.LOG.info("no longer listening on {}", address);
    }

    private void route(SocketChannel c) {
        String peer = peerOf(c);
        int max = service.settings().limits().maxConnections();
        if (connections.incrementAndGet() > max) {
            connections.decrementAndGet();
            refuse(c, peer, "more than " + max + " connections at once on this listener");
            return;
        }
        Runnable route;
        if (options.qemuPreempt()) {
            QemuSlot s = slot;
            if (s != null && !s.over()) {
                if (s.channel != null) {
                    route = () -> routeQemuExtra(s, c, peer);
                } else {
                    s.channel = c;
                    route = () -> routeQemuChannel(s, c, peer);
                }
            } else {
                QemuSlot next = new QemuSlot(c);
                slot = next;
                route = () -> routeMain(c, peer, next);
            }
        } else {
            route = () -> routeMain(c, peer, null);
        }
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

    private static String peerOf(SocketChannel c) {
        try {
            return String.valueOf(c.getRemoteAddress());
        } catch (IOException e) {
            return "?";
        }
    }

    /** Closes a connection that is no migration and no channel of one: one log line, nothing else. */
    private void refuse(SocketChannel c, String peer, String reason) {
        AbstractMigration.LOG.warn("listener {}: connection from {} refused: {}", address.getPort(), peer, reason);
        try {
            c.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    /**
     * A connection that must show what it is by its first bytes; with TLS, first its handshake and its client
     * certificate's subject, before a single stream byte is read.
     */
    private void routeMain(SocketChannel c, String peer, QemuSlot qemu) {
        ByteBuffer buf = Destination.receiveBuffer();
        try {
            c.configureBlocking(true);
            ByteChannel io = c;
            if (tls != null) {
                io = handshake(c, peer);
                if (!readWithDeadline(io, c, buf, 4)) throw new Refused("no bytes within " + firstBytesMillis() + " ms after the TLS handshake");
            } else if (!readWithin(c, buf, 4)) {
                throw new Refused(buf.position() == 0 ? "nothing within " + firstBytesMillis() + " ms"
                        : "fewer than 4 bytes within " + firstBytesMillis() + " ms");
            }
            int magic = buf.getInt(0);
            if (magic == Wire.MAGIC) {
                Destination d = service.newIncoming(c, io, options, this);
                migrations.add(d);
                Settings.pruneEnded(migrations, service.settings().retainEndedMigrations());
                if (qemu != null) qemu.main = d;
                Thread.currentThread().setName("postcopy-in-" + d.id());
                d.run(buf);
                return;
            }
            if (qemu != null) qemu.refused = true;
            if (magic == Wire.CHANNEL_MAGIC && qemu == null) {
                routeTokenChannel(c, io, peer, buf);
                return;
            }
            if (magic == Wire.RESUME_MAGIC && qemu == null) {
                routeResume(c, io, peer, buf);
                return;
            }
            if (magic == Wire.MULTIFD_MAGIC) throw new Refused(multifdRefused(c));
            throw new Refused("first bytes 0x" + String.format("%08x", magic)
                    + " are neither a migration stream (QEVM) nor a channel of a migration of ours");
        } catch (Refused e) {
            if (qemu != null) qemu.refused = true;
            refuse(c, peer, e.getMessage());
        } catch (IOException | RuntimeException e) {
            if (qemu != null) qemu.refused = true;
            refuse(c, peer, (tls != null ? "TLS: " : "") + AbstractMigration.describe(e));
        }
    }

    /**
     * The TLS handshake within the first-bytes deadline, then the client certificate's subject against the
     * authorization list. A client without TLS, a certificate from another CA, an expired one: the handshake fails.
     */
    private ByteChannel handshake(SocketChannel c, String peer) throws IOException {
        TlsWire t = tls.server(c);
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        service.after(firstBytesMillis(), () -> {
            if (!done.get()) closeQuietly(c);
        });
        try {
            t.handshake();
        } finally {
            done.set(true);
        }
        String refusal = tls.refusal(t);
        if (refusal != null) throw new Refused(refusal);
        AbstractMigration.LOG.info("listener {}: {} authenticated as \"{}\"", address.getPort(), peer, Tls.subject(t));
        return tls.channel(t);
    }

    /** Blocking reads on {@code io} until {@code buf} holds {@code n} bytes; the socket is closed at the deadline. */
    private boolean readWithDeadline(ByteChannel io, SocketChannel raw, ByteBuffer buf, int n) throws IOException {
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        service.after(firstBytesMillis(), () -> {
            if (!done.get()) closeQuietly(raw);
        });
        try {
            while (buf.position() < n) if (io.read(buf) < 0) return false;
            return true;
        } catch (java.nio.channels.ClosedChannelException deadline) {
            return false;
        } finally {
            done.set(true);
        }
    }

    private static void closeQuietly(SocketChannel c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    /** Our source's channel: the token must be one a live migration announced (it may come a moment later). */
    private void routeTokenChannel(SocketChannel c, ByteChannel io, String peer, ByteBuffer buf) throws IOException {
        byte[] token = readToken(c, io, buf, "channel");
        Destination main = claim(token, System.nanoTime() + firstBytesNanos());
        if (main == null) throw new Refused("a channel token that no live migration of this listener announced");
        AbstractMigration.LOG.info("migration {}: {} is its postcopy-preempt channel (token)", main.id(), peer);
        main.attachPostcopyChannel(c, io, peer).run(buf);
    }

    /** Our source resuming a paused migration: the migration's token proves which one. */
    private void routeResume(SocketChannel c, ByteChannel io, String peer, ByteBuffer buf) throws IOException {
        byte[] token = readToken(c, io, buf, "resume");
        Destination paused = null;
        for (IncomingMigration m : migrations) if (m instanceof Destination d && d.resumableWith(token)) paused = d;
        if (paused == null) throw new Refused("a resume token that no paused migration of this listener holds");
        AbstractMigration.LOG.info("migration {}: {} resumes it", paused.id(), peer);
        Thread.currentThread().setName("postcopy-in-" + paused.id());
        paused.resume(c, io, peer, buf);
    }

    /**
     * The token after a magic of ours, read within the deadline; {@code buf} is left holding only what follows it
     * (the channel's records, or the resumed stream), in write mode.
     */
    private byte[] readToken(SocketChannel c, ByteChannel io, ByteBuffer buf, String what) throws IOException {
        int need = 4 + Wire.CHANNEL_TOKEN_BYTES;
        if (!(io == c ? readWithin(c, buf, need) : readWithDeadline(io, c, buf, need)))
            throw new Refused("no complete " + what + " token within " + firstBytesMillis() + " ms");
        byte[] token = new byte[Wire.CHANNEL_TOKEN_BYTES];
        buf.get(4, token);
        buf.flip().position(need);
        buf.compact();
        return token;
    }

    /**
     * A connection beyond the live migration's main stream and channel on a QEMU-rule listener: refused. Its first
     * four bytes are looked at (nothing else is read): a QEMU multifd channel is noted, so that the migration that
     * QEMU then ends can say why ({@link #multifdRefusedFrom}). It fails nothing itself: a stranger could send them.
     */
    private void routeQemuExtra(QemuSlot s, SocketChannel c, String peer) {
        String busy = "this listener takes QEMU's rule (qemuPreempt): one migration at a time, and "
                + (s.main != null ? "migration " + s.main.id() : "a migration") + " is live with its channel";
        if (tls == null) {
            ByteBuffer four = ByteBuffer.allocate(4);
            try {
                if (readWithin(c, four, 4) && four.getInt(0) == Wire.MULTIFD_MAGIC) busy = multifdRefused(c);
            } catch (IOException | RuntimeException e) {
                // refused below all the same
            }
        }
        refuse(c, peer, busy);
    }

    /** The last multifd channel refused: from where, when. */
    private volatile java.net.InetAddress multifdHost;
    private volatile long multifdNanos;

    private String multifdRefused(SocketChannel c) {
        try {
            multifdHost = ((InetSocketAddress) c.getRemoteAddress()).getAddress();
            multifdNanos = System.nanoTime();
        } catch (IOException | RuntimeException e) {
            // no address: nothing to note
        }
        return "a QEMU multifd channel (magic 0x11223344): capability multifd is not supported, turn it off on the source";
    }

    /**
     * Whether a multifd channel from {@code host} was refused since {@code sinceNanos}: QEMU closes its main stream
     * when one of its multifd channels is closed, which is the reason its migration ended.
     */
    @Override
    public boolean multifdRefusedFrom(java.net.InetAddress host, long sinceNanos) {
        return host != null && host.equals(multifdHost) && multifdNanos - sinceNanos >= 0;
    }

    /** QEMU's preempt channel: the connection after the main one, once that has shown itself a stream. */
    private void routeQemuChannel(QemuSlot s, SocketChannel c, String peer) {
        long deadline = System.nanoTime() + firstBytesNanos();
        while (s.main == null && !s.refused && System.nanoTime() < deadline) {
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
        Destination main = s.main;
        if (main == null || main.ending()) {
            refuse(c, peer, "the connection before it (its main connection under QEMU's rule) is no live migration");
            return;
        }
        ByteChannel io = c;
        try {
            c.configureBlocking(true);
            if (tls != null) io = handshake(c, peer);      // QEMU gives the preempt socket its own TLS session
        } catch (Refused e) {
            refuse(c, peer, e.getMessage());
            return;
        } catch (IOException | RuntimeException e) {
            refuse(c, peer, (tls != null ? "TLS: " : "") + AbstractMigration.describe(e));
            return;
        }
        AbstractMigration.LOG.info("migration {}: {} is its postcopy-preempt channel (QEMU's rule: the next connection)",
                main.id(), peer);
        main.attachPostcopyChannel(c, io, peer).run(Destination.receiveBuffer());
    }

    // ---- QEMU's migrate-recover ----

    /** The recovery ports open now, by migration; guarded by itself. */
    private final java.util.Map<Destination, ServerSocketChannel> recovering = new java.util.HashMap<>();

    /** {@link IncomingMigration#recover}: a port of its own where {@code d}'s QEMU source resumes. */
    @Override
    public InetSocketAddress recover(Destination d, InetSocketAddress bind) {
        InetSocketAddress at = bind != null ? bind : new InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0);
        if (!at.getAddress().isLoopbackAddress() && tls == null && !options.insecure())
            throw new io.postcopy.migration.MigrationException("recovering migration " + d.id() + " on " + at
                    + " without TLS: the listener has neither TLS nor insecure");
        ServerSocketChannel s;
        try {
            s = ServerSocketChannel.open().bind(at, 4);
        } catch (IOException e) {
            throw new io.postcopy.migration.MigrationException("cannot listen on " + at + " to recover migration " + d.id()
                    + ": " + e.getMessage(), e);
        }
        ServerSocketChannel before;
        synchronized (recovering) {
            before = recovering.put(d, s);     // asked again (another port): the new one replaces it
        }
        closeQuietly(before);
        InetSocketAddress local;
        try {
            local = (InetSocketAddress) s.getLocalAddress();
        } catch (IOException e) {
            closeQuietly(s);
            throw new io.postcopy.migration.MigrationException("recovering migration " + d.id() + ": " + e.getMessage(), e);
        }
        Thread t = new Thread(() -> acceptRecovery(d, s, local), "postcopy-recover-" + d.id());
        t.setDaemon(true);
        t.start();
        AbstractMigration.LOG.info("migration {}: waiting on {} for its source to resume{}", d.id(), local,
                tls != null ? " (TLS)" : "");
        return local;
    }

    /**
     * QEMU resumes on a fresh connection with no stream header: its first bytes are {@code RECV_BITMAP}
     * (QEMU_VM_COMMAND 0x08, command 10). With a postcopy-preempt channel, QEMU 7.2 connects it right after the main
     * one and (over TLS) writes nothing on the main one until that channel is up; QEMU 8.0+ connects it only after
     * the bitmaps were exchanged, before POSTCOPY_RESUME. So the main connection is resumed first and the next
     * connection on this port, whenever it comes within the deadline, is its channel again.
     */
    private void acceptRecovery(Destination d, ServerSocketChannel s, InetSocketAddress local) {
        try (Selector sel = Selector.open()) {
            s.configureBlocking(false);
            s.register(sel, SelectionKey.OP_ACCEPT);
            while (s.isOpen() && d.state() == io.postcopy.migration.MigrationState.POSTCOPY_PAUSED) {
                SocketChannel c = acceptWithin(s, sel, 200);
                if (c == null) continue;
                if (recoverOver(d, s, sel, c)) return;
            }
        } catch (IOException | RuntimeException e) {
            if (s.isOpen()) AbstractMigration.LOG.warn("migration {}: recovery port {} failed: {}", d.id(), local, e.toString());
        } finally {
            synchronized (recovering) {
                recovering.remove(d, s);
            }
            closeQuietly(s);
        }
    }

    /** The next connection within {@code millis}, blocking; null if none. */
    private static SocketChannel acceptWithin(ServerSocketChannel s, Selector sel, long millis) throws IOException {
        sel.select(millis);
        sel.selectedKeys().clear();
        SocketChannel c = s.accept();
        if (c != null) c.configureBlocking(true);
        return c;
    }

    /** True once {@code c} resumed {@code d}; false (and {@code c} refused) when it is not its source. */
    private boolean recoverOver(Destination d, ServerSocketChannel s, Selector sel, SocketChannel c) {
        String peer = peerOf(c);
        Thread acceptor = null;
        // true once the main connection resumes the migration, false once it is refused
        java.util.concurrent.CompletableFuture<Boolean> mainResumes = new java.util.concurrent.CompletableFuture<>();
        try {
            ByteChannel wire = tls != null ? handshake(c, peer) : c;
            ByteBuffer buf = Destination.receiveBuffer();
            // without TLS the main one's first bytes come first (QEMU 7.2's preempt socket is then only in the backlog),
            // so a stranger cannot hold the port waiting for a second connection
            if (tls == null) firstBytesOfResume(c, wire, buf);
            boolean wantChannel = d.hadPostcopyChannel() && !d.fromOurSource();
            if (wantChannel) {
                acceptor = new Thread(() -> acceptChannelAgain(d, s, sel, mainResumes), "postcopy-recover-channel-" + d.id());
                acceptor.setDaemon(true);
                acceptor.start();
            }
            // over TLS QEMU 7.2 writes here only once its preempt channel is up (the acceptor takes it meanwhile)
            if (tls != null) firstBytesOfResume(c, wire, buf);
            if (d.state() != io.postcopy.migration.MigrationState.POSTCOPY_PAUSED)
                throw new Refused("migration " + d.id() + " is " + d.state() + " now");
            if (!wantChannel) closeQuietly(s);       // one source resumes; the port has served
            AbstractMigration.LOG.info("migration {}: {} resumes it{}", d.id(), peer,
                    wantChannel ? "; the next connection here is its postcopy-preempt channel again" : "");
            Thread.currentThread().setName("postcopy-in-" + d.id());
            mainResumes.complete(true);
            d.resume(c, wire, peer, buf);
            return true;
        } catch (Refused e) {
            mainResumes.complete(false);
            refuse(c, peer, "recovering migration " + d.id() + ": " + e.getMessage());
        } catch (IOException | RuntimeException e) {
            mainResumes.complete(false);
            refuse(c, peer, "recovering migration " + d.id() + ": " + (tls != null ? "TLS: " : "") + AbstractMigration.describe(e));
        }
        if (acceptor != null) {
            try {
                acceptor.join(2 * firstBytesMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return false;
    }

    /**
     * The resumed migration's postcopy-preempt channel: the next connection on the recovery port within the first-bytes
     * deadline (QEMU 7.2: at once, and over TLS its main connection stays silent until this one is up; 8.0+: after the
     * bitmaps, so only once the main connection has resumed). It is taken only if the main connection resumes the
     * migration; then the port closes, with or without a channel (without one QEMU fails its own resume). If the main
     * connection is refused, so is this one, and the port stays open for the real source.
     */
    private void acceptChannelAgain(Destination d, ServerSocketChannel s, Selector sel,
                                    java.util.concurrent.CompletableFuture<Boolean> mainResumes) {
        SocketChannel channel = null;
        String channelPeer = null;
        try {
            long deadline = System.nanoTime() + firstBytesNanos();
            while (channel == null && System.nanoTime() < deadline && !Boolean.FALSE.equals(mainResumes.getNow(null))
                    && s.isOpen() && !d.ending()) {
                channel = acceptWithin(s, sel, 50);
            }
            ByteChannel channelIo = null;
            if (channel != null) {
                channelPeer = peerOf(channel);
                // before the main one's outcome is known: QEMU 7.2 over TLS writes there only after this handshake
                channelIo = tls != null ? handshake(channel, channelPeer) : channel;
            }
            boolean resumes;
            try {
                resumes = mainResumes.get(firstBytesMillis() + 1000L, java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
                resumes = false;
            }
            if (!resumes) {
                // the port stays open for the real source (acceptRecovery goes on)
                if (channel != null) refuse(channel, channelPeer, "its main connection was refused");
                return;
            }
            closeQuietly(s);       // the main connection resumes: the port has served
            if (channel == null) {
                if (!d.ending())
                    AbstractMigration.LOG.warn("migration {}: no postcopy-preempt connection on the recovery port within {} ms"
                            + " (the source had one)", d.id(), firstBytesMillis());
                return;
            }
            AbstractMigration.LOG.info("migration {}: {} is its postcopy-preempt channel again", d.id(), channelPeer);
            d.attachPostcopyChannel(channel, channelIo, channelPeer).run(Destination.receiveBuffer());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            if (channel != null) refuse(channel, channelPeer, "interrupted");
        } catch (IOException | RuntimeException e) {
            if (channel != null) refuse(channel, channelPeer != null ? channelPeer : peerOf(channel), "recovering migration "
                    + d.id() + ": postcopy-preempt channel: " + (tls != null ? "TLS: " : "") + AbstractMigration.describe(e));
        }
    }

    /** QEMU's resumed stream begins with RECV_BITMAP (0x08, be16 10); read within the first-bytes deadline. */
    private void firstBytesOfResume(SocketChannel c, ByteChannel wire, ByteBuffer buf) throws IOException {
        if (!(wire == c ? readWithin(c, buf, 3) : readWithDeadline(wire, c, buf, 3)))
            throw new Refused("no RECV_BITMAP within " + firstBytesMillis() + " ms");
        if (buf.get(0) != 0x08 || buf.getShort(1) != 10)
            throw new Refused(String.format("first bytes 0x%02x%04x are not QEMU's RECV_BITMAP command (0x08000a) that "
                    + "begins a resumed stream", buf.get(0), buf.getShort(1)));
    }

    private static void closeQuietly(ServerSocketChannel s) {
        if (s == null) return;
        try {
            s.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    private int firstBytesMillis() {
        return service.settings().limits().firstBytesMillis();
    }

    private long firstBytesNanos() {
        return firstBytesMillis() * 1_000_000L;
    }

    /** From a migration's stream thread: its CHANNEL_TOKEN. A token may serve one migration only. */
    @Override
    public synchronized void announce(byte[] token, Destination d) throws Refused {
        for (Announced a : tokens) {
            if (a.migration == d) throw new Refused("CHANNEL_TOKEN announced twice");
            if (MessageDigest.isEqual(a.token, token)) throw new Refused("CHANNEL_TOKEN already announced by another migration");
        }
        tokens.add(new Announced(token, d));
        notifyAll();
    }

    /** A paused migration's token is good for one more channel (the resumed source opens it again). */
    @Override
    public synchronized void reannounce(byte[] token, Destination d) {
        tokens.removeIf(a -> a.migration == d);
        tokens.add(new Announced(token, d));
        notifyAll();
    }

    /** The migration that announced {@code token}, taken off the list (one channel per token); null at the deadline. */
    private synchronized Destination claim(byte[] token, long deadline) {
        for (;;) {
            for (int i = 0; i < tokens.size(); i++) {
                Announced a = tokens.get(i);
                // constant time: the comparison does not tell a stranger how much of a token it guessed
                if (MessageDigest.isEqual(a.token, token) && !a.migration.ending()) {
                    tokens.remove(i);
                    return a.migration;
                }
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) return null;
            try {
                wait(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
    }

    /** From a migration that has ended: its token is no longer good. */
    @Override
    public synchronized void ended(Destination d) {
        tokens.removeIf(a -> a.migration == d);
    }

    /**
     * Reads until {@code buf} holds {@code n} bytes, for at most {@code firstBytesTimeoutMillis} in all; false on EOF
     * or at the deadline. Leaves the channel blocking.
     */
    private boolean readWithin(SocketChannel c, ByteBuffer buf, int n) throws IOException {
        long deadline = System.nanoTime() + firstBytesNanos();
        c.configureBlocking(false);
        try (Selector sel = Selector.open()) {
            c.register(sel, SelectionKey.OP_READ);
            while (buf.position() < n) {
                long left = (deadline - System.nanoTime()) / 1_000_000;
                if (left <= 0) return false;
                sel.select(left);
                sel.selectedKeys().clear();
                if (c.read(buf) < 0) return false;
            }
            return true;
        } finally {
            c.configureBlocking(true);   // the selector, closed, has deregistered the channel
        }
    }

    @Override public InetSocketAddress address() { return address; }

    @Override public int port() { return address.getPort(); }

    @Override public List<IncomingMigration> migrations() { return List.copyOf(migrations); }

    @Override public IncomingOptions options() { return options; }

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
