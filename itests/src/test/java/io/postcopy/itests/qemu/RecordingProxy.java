package io.postcopy.itests.qemu;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A TCP proxy for one migration: listens on 127.0.0.1 (ephemeral port) and forwards EVERY connection the
 * source opens to the destination, in accept order (each accepted connection is connected to the
 * destination before the next one is accepted), both ways, recording each direction of each connection
 * to a file. The first connection is the migration stream: {@code stream.bin} (source to destination) and
 * {@code return-path.bin} (destination to source). QEMU opens more with some capabilities (postcopy-preempt:
 * one more right after the main one): connection k (k = 1, 2, ...) is recorded to {@code stream-k.bin} and
 * {@code return-path-k.bin}. Bytes are forwarded as they come, so a connection that stays silent stays
 * silent on the destination's side too.
 */
public final class RecordingProxy implements AutoCloseable {
    private final ServerSocketChannel server;
    private final int targetPort;
    private final Path dir;
    private final List<Connection> connections = new CopyOnWriteArrayList<>();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Thread acceptor;

    /** One forwarded connection: its recordings and pumps. */
    public static final class Connection {
        private final int index;
        private final Path streamFile;
        private final Path returnPathFile;
        private final AtomicLong streamBytes = new AtomicLong();
        private final AtomicLong returnPathBytes = new AtomicLong();
        private final SocketChannel a;
        private volatile SocketChannel b;
        private volatile String destinationSide = "?";
        private volatile Thread up;
        private volatile Thread down;

        Connection(int index, Path dir, SocketChannel a) {
            this.index = index;
            this.streamFile = dir.resolve(index == 0 ? "stream.bin" : "stream-" + index + ".bin");
            this.returnPathFile = dir.resolve(index == 0 ? "return-path.bin" : "return-path-" + index + ".bin");
            this.a = a;
        }

        /** 0 for the first connection accepted (the migration stream), then 1, 2, ... */
        public int index() {
            return index;
        }

        /** What the source sent on this connection. */
        public Path streamFile() {
            return streamFile;
        }

        /** What the destination sent back on this connection. */
        public Path returnPathFile() {
            return returnPathFile;
        }

        public long streamBytes() {
            return streamBytes.get();
        }

        /** The proxy's end of its connection to the destination ("/127.0.0.1:PORT"): the peer the destination sees. */
        public String destinationSide() {
            return destinationSide;
        }

        public long returnPathBytes() {
            return returnPathBytes.get();
        }

        boolean ended(long deadlineMillis) throws InterruptedException {
            for (Thread t : new Thread[] {up, down}) {
                if (t == null) {
                    return false;
                }
                t.join(Math.max(1, deadlineMillis - System.currentTimeMillis()));
                if (t.isAlive()) {
                    return false;
                }
            }
            return true;
        }

        void close() {
            for (SocketChannel c : new SocketChannel[] {a, b}) {
                if (c != null) {
                    try {
                        c.close();
                    } catch (IOException ignored) {
                        // closing
                    }
                }
            }
        }

        @Override
        public String toString() {
            return "connection " + index + " (" + destinationSide + "): " + streamBytes() + " B from the source, "
                    + returnPathBytes() + " B back";
        }
    }

    public RecordingProxy(int targetPort, Path dir) throws IOException {
        this.targetPort = targetPort;
        this.dir = dir;
        server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress("127.0.0.1", 0), 16);
        acceptor = new Thread(this::run, "proxy-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    public int port() {
        try {
            return ((InetSocketAddress) server.getLocalAddress()).getPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Every connection accepted so far, in accept order. */
    public List<Connection> connections() {
        return List.copyOf(connections);
    }

    /** The migration stream's recording (the first connection). */
    public Path streamFile() {
        return dir.resolve("stream.bin");
    }

    /** The return path's recording (the first connection). */
    public Path returnPathFile() {
        return dir.resolve("return-path.bin");
    }

    private void run() {
        try {
            while (true) {
                SocketChannel a = server.accept();
                Connection c = new Connection(connections.size(), dir, a);
                connections.add(c);
                c.b = SocketChannel.open(new InetSocketAddress("127.0.0.1", targetPort));
                c.destinationSide = String.valueOf(c.b.getLocalAddress());
                a.socket().setTcpNoDelay(true);
                c.b.socket().setTcpNoDelay(true);
                String n = c.index == 0 ? "" : "-" + c.index;
                c.up = pump(a, c.b, c.streamFile, c.streamBytes, "proxy-stream" + n);
                c.down = pump(c.b, a, c.returnPathFile, c.returnPathBytes, "proxy-return-path" + n);
            }
        } catch (ClosedChannelException e) {
            // closed: no more connections
        } catch (IOException e) {
            if (server.isOpen()) {
                failure.compareAndSet(null, e);
            }
        }
    }

    private Thread pump(SocketChannel from, SocketChannel to, Path file, AtomicLong count, String name) {
        Thread t = new Thread(() -> {
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
            try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                while (true) {
                    buf.clear();
                    int n;
                    try {
                        n = from.read(buf);
                    } catch (IOException e) {
                        n = -1; // reset by the peer: end of this direction
                    }
                    if (n < 0) {
                        break;
                    }
                    // as the destination does: QEMU sets no TCP_NODELAY, so a delayed ACK here would hold its next
                    // short write (Nagle) for up to 40 ms and the proxy would add latency a direct connection has not
                    from.setOption(jdk.net.ExtendedSocketOptions.TCP_QUICKACK, true);
                    buf.flip();
                    ByteBuffer dup = buf.duplicate();
                    while (dup.hasRemaining()) {
                        out.write(dup);
                    }
                    while (buf.hasRemaining()) {
                        to.write(buf);
                    }
                    count.addAndGet(n);
                }
            } catch (IOException e) {
                failure.compareAndSet(null, e);
            } finally {
                try {
                    to.shutdownOutput();
                } catch (IOException ignored) {
                    // already closed
                }
            }
        }, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    /**
     * Stops accepting, then waits until both directions of every connection accepted have ended (or the
     * timeout passed); true if they did and there was at least one connection.
     */
    public boolean awaitEnd(long timeoutMillis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMillis;
        closeServer();
        acceptor.join(Math.max(1, timeoutMillis));
        if (acceptor.isAlive() || connections.isEmpty()) {
            return false;
        }
        for (Connection c : connections) {
            if (!c.ended(deadline)) {
                return false;
            }
        }
        return true;
    }

    public Throwable failure() {
        return failure.get();
    }

    private void closeServer() {
        try {
            server.close();
        } catch (IOException ignored) {
            // closing
        }
    }

    @Override
    public void close() {
        closeServer();
        connections.forEach(Connection::close);
    }
}
