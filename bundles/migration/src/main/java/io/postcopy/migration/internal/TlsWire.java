package io.postcopy.migration.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import tlschannel.NeedsReadException;
import tlschannel.TlsChannel;

/**
 * A TLS connection as the stream uses it: whole buffers per system call, not one 16 KiB record each.
 *
 * <p>tls-channel reads and writes its socket one record at a time. Measured on 2 GiB of pure postcopy: seven times
 * the read and write calls of the plain stream, and a read that returns at most one record, so the destination
 * placed ~3 pages per {@code UFFDIO_COPY} instead of ~10. Here tls-channel sits on {@link Socket}, which reads the
 * socket in large chunks and gathers the records of one {@link #write} into large writes; {@link #read} then goes
 * on decrypting what has already arrived, without blocking, until the caller's buffer is nearly full.
 */
final class TlsWire implements ByteChannel {
    /** Bytes per socket call; the stream's own buffers are of this order. */
    static final int CHUNK = 256 * 1024;
    /** Room for one more record's plain text: below this a further read would return a fraction of a record. */
    private static final int RECORD = 16 * 1024;

    /** The socket under tls-channel: buffered both ways, and told when a read must not block. */
    static final class Socket implements ByteChannel {
        private final SocketChannel raw;
        private final ByteBuffer in, out;
        /** Set while {@link TlsWire#read} decrypts what has arrived: a read with nothing buffered returns 0. */
        private boolean noBlock;
        /** Set while {@link TlsWire#write} runs: records gather in {@code out} until it is full or the write ends. */
        private boolean gather;

        Socket(SocketChannel raw, boolean direct) {
            this.raw = raw;
            this.in = (direct ? ByteBuffer.allocateDirect(CHUNK) : ByteBuffer.allocate(CHUNK)).flip();
            this.out = direct ? ByteBuffer.allocateDirect(CHUNK) : ByteBuffer.allocate(CHUNK);
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            // tls-channel calls this only under its read lock: one reader at a time
            if (!in.hasRemaining()) {
                if (noBlock) return 0;
                in.clear();
                int n = raw.read(in);
                in.flip();
                if (n <= 0) return n;
            }
            int n = Math.min(in.remaining(), dst.remaining());
            dst.put(dst.position(), in, in.position(), n).position(dst.position() + n);
            in.position(in.position() + n);
            return n;
        }

        int buffered() {
            return in.remaining();
        }

        @Override
        public synchronized int write(ByteBuffer src) throws IOException {
            // records written during a handshake, or by the reading thread (TLS 1.3 session tickets, key updates),
            // go out at once: nobody would flush them later
            if (!gather) {
                flush();
                int n = src.remaining();
                while (src.hasRemaining()) raw.write(src);
                return n;
            }
            int n = src.remaining();
            while (src.hasRemaining()) {
                if (!out.hasRemaining()) flush();
                int k = Math.min(out.remaining(), src.remaining());
                out.put(out.position(), src, src.position(), k).position(out.position() + k);
                src.position(src.position() + k);
            }
            return n;
        }

        synchronized void flush() throws IOException {
            out.flip();
            try {
                while (out.hasRemaining()) raw.write(out);
            } finally {
                out.compact();
            }
        }

        synchronized void gather(boolean on) {
            gather = on;
        }

        @Override
        public boolean isOpen() {
            return raw.isOpen();
        }

        @Override
        public void close() throws IOException {
            raw.close();
        }
    }

    private final TlsChannel tls;
    private final Socket socket;
    private final Object writeLock = new Object();

    TlsWire(TlsChannel tls, Socket socket) {
        this.tls = tls;
        this.socket = socket;
    }

    TlsChannel tls() {
        return tls;
    }

    void handshake() throws IOException {
        tls.handshake();
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        int n = tls.read(dst);                           // blocks until a record's worth has arrived
        if (n <= 0) return n;
        socket.noBlock = true;
        try {
            while (dst.remaining() >= RECORD && socket.buffered() > 0) {
                int m = tls.read(dst);
                if (m <= 0) break;
                n += m;
            }
        } catch (NeedsReadException rest) {
            // the rest of a record is still on its way: the next read waits for it
        } finally {
            socket.noBlock = false;
        }
        return n;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        synchronized (writeLock) {
            int n = src.remaining();
            socket.gather(true);
            try {
                while (src.hasRemaining()) tls.write(src);
            } finally {
                socket.gather(false);
                socket.flush();
            }
            return n;
        }
    }

    @Override
    public boolean isOpen() {
        return tls.isOpen();
    }

    @Override
    public void close() throws IOException {
        tls.close();
    }
}
