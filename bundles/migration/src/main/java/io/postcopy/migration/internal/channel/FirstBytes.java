package io.postcopy.migration.internal.channel;

import io.postcopy.migration.internal.AbstractMigration;
import io.postcopy.migration.internal.MigrationServiceImpl;
import io.postcopy.migration.internal.Refused;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What every route of a listener does with a connection that has not yet shown what it is: the TLS handshake
 * (with the client certificate's subject checked) and the first reads, each within the first-bytes deadline
 * ({@code firstBytesTimeoutMillis}: at the deadline the socket is closed), and the one log line that refuses it.
 * Holds nothing but the listener's TLS and port: its routing and recovery threads use it at once, each on its own
 * connection; the deadlines close sockets from the service's {@code postcopy-deadlines} thread.
 */
final class FirstBytes {
    private final MigrationServiceImpl service;
    /** TLS for every connection, or null. */
    private final Tls tls;
    private final int port;

    FirstBytes(MigrationServiceImpl service, Tls tls, int port) {
        this.service = service;
        this.tls = tls;
        this.port = port;
    }

    boolean overTls() {
        return tls != null;
    }

    int millis() {
        return service.settings().limits().firstBytesMillis();
    }

    long nanos() {
        return millis() * 1_000_000L;
    }

    /** {@code c} itself, or TLS over it once {@link #handshake} has authenticated the peer. */
    ByteChannel secure(SocketChannel c, String peer) throws IOException {
        return tls != null ? handshake(c, peer) : c;
    }

    /**
     * The TLS handshake within the first-bytes deadline, then the client certificate's subject against the
     * authorization list. A client without TLS, a certificate from another CA, an expired one: the handshake fails.
     */
    private ByteChannel handshake(SocketChannel c, String peer) throws IOException {
        TlsWire t = tls.server(c);
        AtomicBoolean done = closeAtDeadline(c);
        try {
            t.handshake();
        } finally {
            done.set(true);
        }
        String refusal = tls.refusal(t);
        if (refusal != null) throw new Refused(refusal);
        AbstractMigration.LOG.info("listener {}: {} authenticated as \"{}\"", port, peer, Tls.subject(t));
        return tls.channel(t);
    }

    /**
     * Reads until {@code buf} holds {@code n} bytes, within the first-bytes deadline; false on EOF or at the deadline.
     * {@code io} is {@code c} itself, or TLS over it.
     */
    boolean read(SocketChannel c, ByteChannel io, ByteBuffer buf, int n) throws IOException {
        return io == c ? readWithin(c, buf, n) : readWithDeadline(io, c, buf, n);
    }

    /** Plain TCP: selects on {@code c} until the deadline. Leaves the channel blocking. */
    private boolean readWithin(SocketChannel c, ByteBuffer buf, int n) throws IOException {
        long deadline = System.nanoTime() + nanos();
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

    /** TLS: blocking reads on {@code io}; the socket is closed at the deadline. */
    private boolean readWithDeadline(ByteChannel io, SocketChannel raw, ByteBuffer buf, int n) throws IOException {
        AtomicBoolean done = closeAtDeadline(raw);
        try {
            while (buf.position() < n) if (io.read(buf) < 0) return false;
            return true;
        } catch (ClosedChannelException deadline) {
            return false;
        } finally {
            done.set(true);
        }
    }

    /** Closes {@code c} at the first-bytes deadline unless the returned flag is set by then. */
    private AtomicBoolean closeAtDeadline(SocketChannel c) {
        AtomicBoolean done = new AtomicBoolean();
        service.after(millis(), () -> {
            if (!done.get()) close(c);
        });
        return done;
    }

    /** Why a route failed: a {@link Refused}'s own message, else what broke (the TLS layer, when there is one). */
    String why(Exception e) {
        return e instanceof Refused ? e.getMessage() : failure(e);
    }

    /** What broke: the exception described, marked as TLS's when the connection has it. */
    String failure(Exception e) {
        return (tls != null ? "TLS: " : "") + AbstractMigration.describe(e);
    }

    /** Closes a connection that is no migration and no channel of one: one log line, nothing else. */
    void refuse(SocketChannel c, String peer, String reason) {
        AbstractMigration.LOG.warn("listener {}: connection from {} refused: {}", port, peer, reason);
        close(c);
    }

    static String peerOf(SocketChannel c) {
        try {
            return String.valueOf(c.getRemoteAddress());
        } catch (IOException e) {
            return "?";
        }
    }

    /** Closes a socket or server socket, if any, as it is given up. */
    static void close(Closeable c) {
        if (c == null) return;
        try {
            c.close();
        } catch (IOException ignored) {
            // closing
        }
    }
}
