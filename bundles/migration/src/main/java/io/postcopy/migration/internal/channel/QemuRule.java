package io.postcopy.migration.internal.channel;

import io.postcopy.codec.Wire;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.internal.AbstractMigration;
import io.postcopy.migration.internal.destination.Destination;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.LockSupport;

/**
 * QEMU's rule, for a listener with {@link IncomingOptions#qemuPreempt()}: QEMU names no channel, so one migration is
 * served at a time, and the connection accepted right after its main connection is its postcopy-preempt channel;
 * any further connection while that migration lives is refused. Accept order is the whole proof, so {@link #route}
 * places each connection on the listener's acceptor thread; the routes it returns run on the routing threads.
 */
final class QemuRule {
    /** The migration served now: whether its main connection became one, and whether its channel was taken. */
    static final class Slot {
        /** Written by the main connection's routing thread once its magic made it a migration. */
        volatile Destination main;
        /** Written by the main connection's routing thread when it proved no migration. */
        volatile boolean refused;
        /** The connection after the main one was taken as its channel; acceptor thread only. */
        boolean channelTaken;

        boolean over() {
            return refused || (main != null && main.ending());
        }
    }

    private final Router router;
    private final FirstBytes firstBytes;
    /** The migration served now; acceptor thread only. */
    private Slot slot;

    QemuRule(Router router, FirstBytes firstBytes) {
        this.router = router;
        this.firstBytes = firstBytes;
    }

    /** On the acceptor thread: what {@code c} is by its place in accept order, as the route to run on its own thread. */
    Runnable route(SocketChannel c, String peer) {
        Slot s = slot;
        if (s != null && !s.over()) {
            if (s.channelTaken) return () -> refuseExtra(s, c, peer);
            s.channelTaken = true;
            return () -> routeChannel(s, c, peer);
        }
        Slot next = new Slot();
        slot = next;
        return () -> router.route(c, peer, next);
    }

    /** QEMU's preempt channel: the connection after the main one, once that has shown itself a stream. */
    private void routeChannel(Slot s, SocketChannel c, String peer) {
        long deadline = System.nanoTime() + firstBytes.nanos();
        while (s.main == null && !s.refused && System.nanoTime() < deadline) {
            LockSupport.parkNanos(1_000_000);
        }
        Destination main = s.main;
        if (main == null || main.ending()) {
            firstBytes.refuse(c, peer, "the connection before it (its main connection under QEMU's rule) is no live migration");
            return;
        }
        ByteChannel io;
        try {
            c.configureBlocking(true);
            io = firstBytes.secure(c, peer);      // QEMU gives the preempt socket its own TLS session
        } catch (IOException | RuntimeException e) {
            firstBytes.refuse(c, peer, firstBytes.why(e));
            return;
        }
        AbstractMigration.LOG.info("migration {}: {} is its postcopy-preempt channel (QEMU's rule: the next connection)",
                main.id(), peer);
        main.attachPostcopyChannel(c, io, peer).run(Destination.receiveBuffer());
    }

    /**
     * A connection beyond the live migration's main stream and channel: refused. Its first four bytes are looked at
     * (nothing else is read): a QEMU multifd channel is noted, so that the migration that QEMU then ends can say why
     * ({@link Router#multifdRefusedFrom}). It fails nothing itself: a stranger could send them.
     */
    private void refuseExtra(Slot s, SocketChannel c, String peer) {
        String busy = "this listener takes QEMU's rule (qemuPreempt): one migration at a time, and "
                + (s.main != null ? "migration " + s.main.id() : "a migration") + " is live with its channel";
        if (!firstBytes.overTls()) {
            ByteBuffer four = ByteBuffer.allocate(4);
            try {
                if (firstBytes.read(c, c, four, 4) && four.getInt(0) == Wire.MULTIFD_MAGIC) busy = router.multifdRefused(c);
            } catch (IOException | RuntimeException e) {
                // refused below all the same
            }
        }
        firstBytes.refuse(c, peer, busy);
    }
}
