package io.postcopy.migration.internal.channel;

import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.MigrationException;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.AbstractMigration;
import io.postcopy.migration.internal.destination.Destination;
import io.postcopy.migration.internal.Refused;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * QEMU's migrate-recover for the migrations of one listener: {@link IncomingMigration#recover} opens a port of the
 * paused migration's own, where its QEMU source resumes on a fresh connection, and with a postcopy-preempt channel
 * connects that again. {@link #recover} runs on the caller's thread; each port has an accepting thread
 * {@code postcopy-recover-<id>} that becomes the resumed stream's thread ({@code postcopy-in-<id>}), and for a
 * source that had a channel a thread {@code postcopy-recover-channel-<id>} that takes it again and runs it.
 */
final class Recovery {
    private final IncomingOptions options;
    private final FirstBytes firstBytes;
    /** The recovery ports open now, by migration; guarded by itself. */
    private final Map<Destination, ServerSocketChannel> recovering = new HashMap<>();

    Recovery(IncomingOptions options, FirstBytes firstBytes) {
        this.options = options;
        this.firstBytes = firstBytes;
    }

    /** {@link IncomingMigration#recover}: a port of its own where {@code d}'s QEMU source resumes. */
    InetSocketAddress recover(Destination d, InetSocketAddress bind) {
        InetSocketAddress at = bind != null ? bind : new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        if (!at.getAddress().isLoopbackAddress() && !firstBytes.overTls() && !options.insecure())
            throw new MigrationException("recovering migration " + d.id() + " on " + at
                    + " without TLS: the listener has neither TLS nor insecure");
        ServerSocketChannel s;
        try {
            s = ServerSocketChannel.open().bind(at, 4);
        } catch (IOException e) {
            throw new MigrationException("cannot listen on " + at + " to recover migration " + d.id()
                    + ": " + e.getMessage(), e);
        }
        ServerSocketChannel before;
        synchronized (recovering) {
            before = recovering.put(d, s);     // asked again (another port): the new one replaces it
        }
        FirstBytes.close(before);
        InetSocketAddress local;
        try {
            local = (InetSocketAddress) s.getLocalAddress();
        } catch (IOException e) {
            FirstBytes.close(s);
            throw new MigrationException("recovering migration " + d.id() + ": " + e.getMessage(), e);
        }
        Thread t = new Thread(() -> acceptRecovery(d, s, local), "postcopy-recover-" + d.id());
        t.setDaemon(true);
        t.start();
        AbstractMigration.LOG.info("migration {}: waiting on {} for its source to resume{}", d.id(), local,
                firstBytes.overTls() ? " (TLS)" : "");
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
            while (s.isOpen() && d.state() == MigrationState.POSTCOPY_PAUSED) {
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
            FirstBytes.close(s);
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
        String peer = FirstBytes.peerOf(c);
        Thread acceptor = null;
        // true once the main connection resumes the migration, false once it is refused
        CompletableFuture<Boolean> mainResumes = new CompletableFuture<>();
        try {
            ByteChannel wire = firstBytes.secure(c, peer);
            ByteBuffer buf = Destination.receiveBuffer();
            // without TLS the main one's first bytes come first (QEMU 7.2's preempt socket is then only in the backlog),
            // so a stranger cannot hold the port waiting for a second connection
            if (!firstBytes.overTls()) firstBytesOfResume(c, wire, buf);
            boolean wantChannel = d.hadPostcopyChannel() && !d.fromOurSource();
            if (wantChannel) {
                acceptor = new Thread(() -> acceptChannelAgain(d, s, sel, mainResumes), "postcopy-recover-channel-" + d.id());
                acceptor.setDaemon(true);
                acceptor.start();
            }
            // over TLS QEMU 7.2 writes here only once its preempt channel is up (the acceptor takes it meanwhile)
            if (firstBytes.overTls()) firstBytesOfResume(c, wire, buf);
            if (d.state() != MigrationState.POSTCOPY_PAUSED)
                throw new Refused("migration " + d.id() + " is " + d.state() + " now");
            if (!wantChannel) FirstBytes.close(s);       // one source resumes; the port has served
            AbstractMigration.LOG.info("migration {}: {} resumes it{}", d.id(), peer,
                    wantChannel ? "; the next connection here is its postcopy-preempt channel again" : "");
            Thread.currentThread().setName("postcopy-in-" + d.id());
            mainResumes.complete(true);
            d.resume(c, wire, peer, buf);
            return true;
        } catch (IOException | RuntimeException e) {
            mainResumes.complete(false);
            firstBytes.refuse(c, peer, "recovering migration " + d.id() + ": " + firstBytes.why(e));
        }
        if (acceptor != null) {
            try {
                acceptor.join(2 * firstBytes.millis());
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
    private void acceptChannelAgain(Destination d, ServerSocketChannel s, Selector sel, CompletableFuture<Boolean> mainResumes) {
        SocketChannel channel = null;
        String channelPeer = null;
        try {
            long deadline = System.nanoTime() + firstBytes.nanos();
            while (channel == null && System.nanoTime() < deadline && !Boolean.FALSE.equals(mainResumes.getNow(null))
                    && s.isOpen() && !d.ending()) {
                channel = acceptWithin(s, sel, 50);
            }
            ByteChannel channelIo = null;
            if (channel != null) {
                channelPeer = FirstBytes.peerOf(channel);
                // before the main one's outcome is known: QEMU 7.2 over TLS writes there only after this handshake
                channelIo = firstBytes.secure(channel, channelPeer);
            }
            boolean resumes;
            try {
                resumes = mainResumes.get(firstBytes.millis() + 1000L, TimeUnit.MILLISECONDS);
            } catch (TimeoutException | ExecutionException e) {
                resumes = false;
            }
            if (!resumes) {
                // the port stays open for the real source (acceptRecovery goes on)
                if (channel != null) firstBytes.refuse(channel, channelPeer, "its main connection was refused");
                return;
            }
            FirstBytes.close(s);       // the main connection resumes: the port has served
            if (channel == null) {
                if (!d.ending())
                    AbstractMigration.LOG.warn("migration {}: no postcopy-preempt connection on the recovery port within {} ms"
                            + " (the source had one)", d.id(), firstBytes.millis());
                return;
            }
            AbstractMigration.LOG.info("migration {}: {} is its postcopy-preempt channel again", d.id(), channelPeer);
            d.attachPostcopyChannel(channel, channelIo, channelPeer).run(Destination.receiveBuffer());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            if (channel != null) firstBytes.refuse(channel, channelPeer, "interrupted");
        } catch (IOException | RuntimeException e) {
            if (channel != null) firstBytes.refuse(channel, channelPeer != null ? channelPeer : FirstBytes.peerOf(channel),
                    "recovering migration " + d.id() + ": postcopy-preempt channel: " + firstBytes.failure(e));
        }
    }

    /** QEMU's resumed stream begins with RECV_BITMAP (0x08, be16 10); read within the first-bytes deadline. */
    private void firstBytesOfResume(SocketChannel c, ByteChannel wire, ByteBuffer buf) throws IOException {
        if (!firstBytes.read(c, wire, buf, 3))
            throw new Refused("no RECV_BITMAP within " + firstBytes.millis() + " ms");
        if (buf.get(0) != 0x08 || buf.getShort(1) != 10)
            throw new Refused(String.format("first bytes 0x%02x%04x are not QEMU's RECV_BITMAP command (0x08000a) that "
                    + "begins a resumed stream", buf.get(0), buf.getShort(1)));
    }
}
