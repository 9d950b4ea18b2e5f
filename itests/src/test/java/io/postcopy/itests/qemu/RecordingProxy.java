package io.postcopy.itests.qemu;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A TCP proxy for one migration: listens on 127.0.0.1 (ephemeral port), accepts one connection (the
 * source), connects to the destination, forwards both ways and records each direction to a file:
 * {@code stream.bin} (source to destination) and {@code return-path.bin} (destination to source).
 */
public final class RecordingProxy implements AutoCloseable {
    private final ServerSocketChannel server;
    private final int targetPort;
    private final Path streamFile;
    private final Path returnPathFile;
    private final AtomicLong streamBytes = new AtomicLong();
    private final AtomicLong returnPathBytes = new AtomicLong();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Thread acceptor;
    private volatile SocketChannel a;
    private volatile SocketChannel b;
    private volatile Thread up;
    private volatile Thread down;

    public RecordingProxy(int targetPort, Path dir) throws IOException {
        this.targetPort = targetPort;
        this.streamFile = dir.resolve("stream.bin");
        this.returnPathFile = dir.resolve("return-path.bin");
        server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress("127.0.0.1", 0), 1);
        acceptor = new Thread(this::run, "proxy-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    public int port() {
        return ((InetSocketAddress) socketAddress()).getPort();
    }

    private java.net.SocketAddress socketAddress() {
        try {
            return server.getLocalAddress();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public Path streamFile() {
        return streamFile;
    }

    public Path returnPathFile() {
        return returnPathFile;
    }

    public long streamBytes() {
        return streamBytes.get();
    }

    public long returnPathBytes() {
        return returnPathBytes.get();
    }

    private void run() {
        try {
            a = server.accept();
            server.close();
            b = SocketChannel.open(new InetSocketAddress("127.0.0.1", targetPort));
            a.socket().setTcpNoDelay(true);
            b.socket().setTcpNoDelay(true);
            up = pump(a, b, streamFile, streamBytes, "proxy-stream");
            down = pump(b, a, returnPathFile, returnPathBytes, "proxy-return-path");
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

    /** Waits until both directions have ended (or the timeout passed); true if they did. */
    public boolean awaitEnd(long timeoutMillis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMillis;
        acceptor.join(Math.max(1, timeoutMillis));
        for (Thread t : new Thread[] {up, down}) {
            if (t == null) {
                return false;
            }
            t.join(Math.max(1, deadline - System.currentTimeMillis()));
            if (t.isAlive()) {
                return false;
            }
        }
        return true;
    }

    public Throwable failure() {
        return failure.get();
    }

    @Override
    public void close() {
        for (java.nio.channels.Channel c : new java.nio.channels.Channel[] {server, a, b}) {
            if (c != null) {
                try {
                    c.close();
                } catch (IOException ignored) {
                    // closing
                }
            }
        }
    }
}
