package io.postcopy.migration.internal.source;

import io.postcopy.codec.StreamEncoder;
import io.postcopy.codec.Wire;
import io.postcopy.migration.internal.channel.Tls;
import io.postcopy.migration.internal.channel.TlsWire;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;

/**
 * The source's connections to the destination: the main one (the migration stream one way, the return path the
 * other) and QEMU's postcopy-preempt channel, each its own TCP connection and, with TLS, its own session, in which the
 * destination's certificate must name the migration's target. Our extra connections (the preempt channel, a resumed
 * main connection) open with our magic and the migration's token.
 *
 * <p>Threads: the sender opens them (setup, resume). Closing is how the other threads are stopped: the sender, cancel,
 * pause, a failing return-path reader and the silence watch all {@link #close} them.
 */
final class Connections {
    private final Outgoing o;
    /** TLS for both connections, or null. */
    private final Tls tls;
    /** The preempt channel's and a resumed connection's proof: random, per migration, sent only to our destination. */
    final byte[] token = new byte[Wire.CHANNEL_TOKEN_BYTES];
    private volatile SocketChannel main, preempt;

    /** A main connection: its bytes (plain or TLS; the sender writes, the return-path reader reads) and its encoder. */
    record Main(ByteChannel io, StreamEncoder enc) {
    }

    Connections(Outgoing o, Tls tls) {
        this.o = o;
        this.tls = tls;
    }

    boolean usesTls() {
        return tls != null;
    }

    /** Connects the main connection to {@code to}; with {@code magic} not 0, our magic and the token go first. */
    Main openMain(InetSocketAddress to, int magic) throws IOException {
        SocketChannel c = SocketChannel.open();
        main = c;
        if (o.cancelled) throw new IOException("cancelled");
        c.setOption(StandardSocketOptions.TCP_NODELAY, true);
        int sndbuf = o.options.sendBufferSize() > 0 ? o.options.sendBufferSize() : o.service.settings().sendBufferSize();
        if (sndbuf > 0) c.setOption(StandardSocketOptions.SO_SNDBUF, sndbuf);
        c.connect(to);
        o.peer = to.getHostString() + ":" + to.getPort();    // as the operator wrote it (no resolver's "/")
        ByteChannel io = secure(c);
        if (magic != 0) hello(io, magic);
        return new Main(io, new StreamEncoder(io, Math.max(sndbuf > 0 ? sndbuf : 256 * 1024, 72 * 1024),
                Wire.DEFAULT_TARGET_PAGE_SIZE));
    }

    /** The postcopy-preempt channel to {@code to}: its own connection (and TLS session, as QEMU's), magic and token. */
    ByteChannel openPreempt(InetSocketAddress to) throws IOException {
        SocketChannel pc = SocketChannel.open();
        pc.setOption(StandardSocketOptions.TCP_NODELAY, true);
        pc.connect(to);
        ByteChannel pio = secure(pc);
        // the channel proves which migration it belongs to: a secret only this source knows, announced on the
        // main stream (CHANNEL_TOKEN); until then it is silent, as QEMU's
        hello(pio, Wire.CHANNEL_MAGIC);
        preempt = pc;
        return pio;
    }

    /** Closes both connections: whoever blocks on them wakes with an exception. */
    void close() {
        for (SocketChannel c : new SocketChannel[] {main, preempt}) {
            if (c != null) {
                try {
                    c.close();
                } catch (IOException ignored) {
                    // closing
                }
            }
        }
    }

    private void hello(ByteChannel io, int magic) throws IOException {
        ByteBuffer hello = ByteBuffer.allocate(4 + Wire.CHANNEL_TOKEN_BYTES).putInt(magic).put(token).flip();
        while (hello.hasRemaining()) io.write(hello);
    }

    /** The connection itself, or TLS over it with the handshake done (the destination's certificate checked). */
    private ByteChannel secure(SocketChannel c) throws IOException {
        if (tls == null) return c;
        String name = o.options.tls().hostname() != null ? o.options.tls().hostname() : o.target.getHostString();
        TlsWire t = tls.client(c, name, o.target.getPort());
        t.handshake();
        return tls.channel(t);
    }
}
