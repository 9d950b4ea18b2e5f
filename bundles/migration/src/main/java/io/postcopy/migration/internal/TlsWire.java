package io.postcopy.migration.internal;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * A TLS connection as the stream uses it: an {@link SSLEngine} driven straight over the socket with large buffers.
 *
 * <p>Records are decrypted from the bytes as the socket delivered them straight into the caller's buffer, and the
 * records of one {@link #write} leave in one system call: per GiB one kernel copy each way plus the cipher, as
 * plain TCP has one kernel copy. (tls-channel, used before, read and wrote one 16 KiB record per call; buffering
 * around it cost one more copy of every byte on each side: docs/performance.md, "TLS".)
 *
 * <p>Threads: one reader at a time (the stream's thread, or {@link ReadAhead}'s); writers are serialised here, and a
 * reader that must answer (a TLS 1.3 key update) writes under the same lock. Engines synchronise wrap against unwrap.
 * No close_notify is sent: our streams end by their own EOS, and QEMU sends none either.
 */
public final class TlsWire implements ByteChannel {
    /** Bytes per socket call; the stream's own buffers are of this order. */
    static final int CHUNK = 256 * 1024;
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);

    private final SocketChannel raw;
    private final SSLEngine engine;
    /** Encrypted bytes read from the socket, not yet decrypted; read mode between calls. Reader only. */
    private final ByteBuffer inEnc;
    /** Plain text decrypted for a caller whose buffer had no room for a whole record; read mode. Reader only. */
    private final ByteBuffer inPlain;
    /** Records to be written; write mode. Under {@link #writeLock}. */
    private final ByteBuffer outEnc;
    private final Object writeLock = new Object();
    /** The largest plain text one record decrypts to, as the engine requires room for it. */
    private final int recordPlain;
    private final int recordPacket;
    private boolean peerClosed;

    TlsWire(SocketChannel raw, SSLEngine engine, boolean direct) {
        this.raw = raw;
        this.engine = engine;
        this.recordPlain = engine.getSession().getApplicationBufferSize();
        this.recordPacket = engine.getSession().getPacketBufferSize();
        int enc = CHUNK + recordPacket;
        this.inEnc = (direct ? ByteBuffer.allocateDirect(enc) : ByteBuffer.allocate(enc)).flip();
        this.outEnc = direct ? ByteBuffer.allocateDirect(enc) : ByteBuffer.allocate(enc);
        this.inPlain = (direct ? ByteBuffer.allocateDirect(recordPlain) : ByteBuffer.allocate(recordPlain)).flip();
    }

    SSLEngine engine() {
        return engine;
    }

    /** Runs the handshake on the caller's thread; a failure is sent to the peer as TLS's alert where there is one. */
    void handshake() throws IOException {
        engine.beginHandshake();
        try {
            for (;;) {
                switch (engine.getHandshakeStatus()) {
                    case NEED_WRAP:
                        synchronized (writeLock) {
                            SSLEngineResult r = engine.wrap(EMPTY, outEnc);
                            if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) flush();
                            if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                                flush();
                                throw new SSLException("TLS handshake: the engine closed (" + r + ")");
                            }
                            flush();
                        }
                        break;
                    case NEED_UNWRAP:
                    case NEED_UNWRAP_AGAIN:
                        if (!unwrapHandshake()) throw new EOFException("connection closed during the TLS handshake");
                        break;
                    case NEED_TASK:
                        runTasks();
                        break;
                    default:
                        return;         // NOT_HANDSHAKING (FINISHED is only ever a result's status)
                }
            }
        } catch (SSLException e) {
            sendAlert();
            throw e;
        }
    }

    /** One handshake unwrap, reading more first when a record is incomplete; false at EOF. */
    private boolean unwrapHandshake() throws IOException {
        for (;;) {
            inPlain.compact();
            SSLEngineResult r;
            try {
                r = engine.unwrap(inEnc, inPlain);
            } finally {
                inPlain.flip();
            }
            switch (r.getStatus()) {
                case BUFFER_UNDERFLOW:
                    // BoringSSL reports the unwrap that finishes the handshake as an underflow: nothing must be read
                    // then (QEMU 7.2 resuming over TLS writes nothing until its preempt channel is up)
                    if (r.getHandshakeStatus() != SSLEngineResult.HandshakeStatus.NEED_UNWRAP) return true;
                    if (!fill()) return false;
                    continue;
                case CLOSED:
                    throw new SSLException("TLS handshake: the peer closed the connection (" + r + ")");
                default:
                    return true;
            }
        }
    }

    /** After a failed handshake: the engine's alert (bad certificate, unknown CA...) to the peer, best effort. */
    private void sendAlert() {
        try {
            synchronized (writeLock) {
                engine.closeOutbound();
                for (int i = 0; i < 4 && !engine.isOutboundDone(); i++) {
                    if (engine.wrap(EMPTY, outEnc).bytesProduced() == 0) break;
                }
                flush();
            }
        } catch (IOException | RuntimeException ignored) {
            // the peer may be gone already: the handshake's own failure is the one to report
        }
    }

    private void runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) task.run();
    }

    /** Reads more encrypted bytes from the socket (blocking); false at EOF. */
    private boolean fill() throws IOException {
        inEnc.compact();
        int n;
        try {
            n = raw.read(inEnc);
        } finally {
            inEnc.flip();
        }
        return n >= 0;
    }

    /**
     * Whether the destination's main stream decrypts on a thread of its own: system property
     * {@code postcopy.tls.readAhead} = {@code on}, {@code off}, or {@code auto} (the default: on with 4 CPUs or more,
     * where one is free for it; with 2, source and destination on one host, it only competes for them).
     */
    public static final boolean READ_AHEAD = switch (System.getProperty("postcopy.tls.readAhead", "auto")) {
        case "on" -> true;
        case "off" -> false;
        default -> Runtime.getRuntime().availableProcessors() >= 4;
    };

    /** Set by {@link #readAhead}: from then on every read is served by it. */
    private ReadAhead ahead;

    /**
     * From now on, decrypt on a thread of its own ahead of the reader: decryption then overlaps the placement of the
     * pages before, on a second CPU where one is free. Called by the only reader, between two reads.
     */
    public void readAhead(String name) {
        if (ahead == null) ahead = new ReadAhead(name);
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        return ahead != null ? ahead.read(dst) : readNow(dst);
    }

    /**
     * Blocks until at least one record's plain text is here, then decrypts every whole record already read, as long
     * as the caller's buffer has room: records go straight into it while it has room for a whole one.
     */
    private int readNow(ByteBuffer dst) throws IOException {
        if (!dst.hasRemaining()) return 0;
        int n = 0;
        if (inPlain.hasRemaining()) {
            n = transfer(inPlain, dst);
            if (!dst.hasRemaining()) return n;
        }
        if (peerClosed) return n > 0 ? n : -1;
        for (;;) {
            if (!dst.hasRemaining()) return n;
            boolean direct = dst.remaining() >= recordPlain;
            SSLEngineResult r;
            if (direct) {
                r = engine.unwrap(inEnc, dst);
                n += r.bytesProduced();
            } else {
                inPlain.clear();
                try {
                    r = engine.unwrap(inEnc, inPlain);
                } finally {
                    inPlain.flip();
                }
                n += transfer(inPlain, dst);
            }
            switch (r.getStatus()) {
                case OK:
                    if (r.bytesConsumed() == 0 && r.bytesProduced() == 0 && !inEnc.hasRemaining()) {
                        if (n > 0) return n;
                        if (!fill()) return -1;
                        continue;
                    }
                    afterUnwrap(r);
                    continue;
                case BUFFER_UNDERFLOW:
                    if (n > 0) return n;              // what has arrived is given out; the rest waits
                    if (!fill()) return -1;           // EOF without close_notify: QEMU's way to end (see class comment)
                    continue;
                case CLOSED:
                    peerClosed = true;
                    return n > 0 ? n : -1;
                default:                              // BUFFER_OVERFLOW: cannot be, dst or inPlain has a record's room
                    throw new SSLException("TLS: unexpected " + r + " with " + dst.remaining() + " bytes of room");
            }
        }
    }

    /** A post-handshake message (TLS 1.3 key update, session ticket) may ask for an answer or a task. */
    private void afterUnwrap(SSLEngineResult r) throws IOException {
        SSLEngineResult.HandshakeStatus hs = r.getHandshakeStatus();
        if (hs == SSLEngineResult.HandshakeStatus.NEED_TASK) {
            runTasks();
            hs = engine.getHandshakeStatus();
        }
        if (hs == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
            synchronized (writeLock) {
                while (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                    if (engine.wrap(EMPTY, outEnc).bytesProduced() == 0) break;
                }
                flush();
            }
        }
    }

    private static int transfer(ByteBuffer from, ByteBuffer to) {
        int k = Math.min(from.remaining(), to.remaining());
        to.put(to.position(), from, from.position(), k).position(to.position() + k);
        from.position(from.position() + k);
        return k;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        synchronized (writeLock) {
            int n = src.remaining();
            while (src.hasRemaining()) {
                if (outEnc.remaining() < recordPacket) flush();
                SSLEngineResult r = engine.wrap(src, outEnc);
                switch (r.getStatus()) {
                    case OK:
                        if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) runTasks();
                        break;
                    case BUFFER_OVERFLOW:
                        flush();
                        break;
                    default:
                        throw new ClosedChannelException();    // CLOSED: the connection is being closed
                }
            }
            flush();
            return n;
        }
    }

    /** Writes the records gathered in {@code outEnc}; under {@link #writeLock}. */
    private void flush() throws IOException {
        outEnc.flip();
        try {
            while (outEnc.hasRemaining()) raw.write(outEnc);
        } finally {
            outEnc.compact();
        }
    }

    @Override
    public boolean isOpen() {
        return raw.isOpen();
    }

    @Override
    public void close() throws IOException {
        raw.close();
    }

    /**
     * A thread that fills a small ring of buffers with decrypted bytes; {@link #read} copies from it. Ends at the
     * stream's end, a failure (handed to the reader as it was thrown) or the socket's close.
     */
    private final class ReadAhead implements Runnable {
        private static final int SLOTS = 4;
        /** Marks the end in {@code ready}: {@code failure} says which. */
        private final ByteBuffer end = ByteBuffer.allocate(0);
        private final java.util.concurrent.ArrayBlockingQueue<ByteBuffer> free = new java.util.concurrent.ArrayBlockingQueue<>(SLOTS);
        private final java.util.concurrent.ArrayBlockingQueue<ByteBuffer> ready = new java.util.concurrent.ArrayBlockingQueue<>(SLOTS + 1);
        private volatile Throwable failure;
        /** The reader's buffer being drained, or null; reader only. */
        private ByteBuffer current;

        ReadAhead(String name) {
            for (int i = 0; i < SLOTS; i++) free.add(ByteBuffer.allocateDirect(CHUNK));
            Thread t = new Thread(this, name);
            t.setDaemon(true);
            t.start();
        }

        @Override
        public void run() {
            try {
                for (;;) {
                    ByteBuffer b = free.poll(100, java.util.concurrent.TimeUnit.MILLISECONDS);
                    if (b == null) {
                        if (!raw.isOpen()) throw new ClosedChannelException();
                        continue;        // the reader is busy placing: wait for it
                    }
                    b.clear();
                    if (readNow(b) < 0) break;
                    ready.put(b.flip());
                }
            } catch (Throwable t) {
                failure = t;
            }
            ready.offer(end);            // room for it: SLOTS buffers at most are ever in ready
        }

        int read(ByteBuffer dst) throws IOException {
            int n = 0;
            while (dst.hasRemaining()) {
                if (current == null) {
                    try {
                        current = n == 0 ? ready.take() : ready.poll();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new java.io.InterruptedIOException("interrupted while reading the TLS stream");
                    }
                    if (current == null) break;
                }
                if (current == end) {
                    if (n > 0) break;
                    Throwable t = failure;
                    if (t == null) return -1;
                    if (t instanceof IOException e) throw e;
                    if (t instanceof RuntimeException e) throw e;
                    if (t instanceof Error e) throw e;
                    throw new IOException(t);
                }
                n += transfer(current, dst);
                if (!current.hasRemaining()) {
                    free.offer(current);
                    current = null;
                }
            }
            return n;
        }
    }
}
