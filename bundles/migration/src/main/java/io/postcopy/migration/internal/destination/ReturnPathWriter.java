package io.postcopy.migration.internal.destination;

import static io.postcopy.migration.internal.AbstractMigration.LOG;

import io.postcopy.codec.ReturnPathEncoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.Wire;
import io.postcopy.fault.PageRequester;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The return path, destination → source on the main connection: the fault thread's page requests (the fault
 * service's {@link PageRequester}) and the stream thread's answers (PONG, SWITCHOVER_ACK, PEER_ID, RECV_BITMAP,
 * RESUME_ACK), and SHUT from whichever thread ends the migration. One lock serialises them all, and the switch to a
 * resumed connection, so that messages never interleave and a request never goes half to the old connection.
 */
final class ReturnPathWriter implements PageRequester {
    private final Destination main;
    private final Object lock = new Object();
    private ReturnPathEncoder encoder = new ReturnPathEncoder();    // guarded by lock
    private final ByteBuffer buf = ByteBuffer.allocateDirect(Wire.MAX_RETURN_PATH_PAYLOAD + 8);   // guarded by lock
    /** The block of the last request, by its name on the wire; written by the fault thread only, under the lock. */
    private String lastRequestWire;
    /** SHUT is the return path's last message: one, whichever thread ends the migration first sends it. */
    private final AtomicBoolean shutSent = new AtomicBoolean();
    private volatile long requests;

    ReturnPathWriter(Destination main) {
        this.main = main;
    }

    long requests() {
        return requests;
    }

    void send(ReturnPathMessage m) throws IOException {
        synchronized (lock) {
            int len = ReturnPathEncoder.encodedLength(m);
            // a received bitmap is as long as its block is large: a buffer of its own
            ByteBuffer b = len <= buf.capacity() ? buf.clear() : ByteBuffer.allocateDirect(len);
            encoder.write(m, b);
            b.flip();
            while (b.hasRemaining()) main.wire.write(b);
        }
    }

    void sendShut(int status) throws IOException {
        if (shutSent.compareAndSet(false, true)) send(new ReturnPathMessage.Shut(status));
    }

    /** From the fault thread: REQ_PAGES_ID when the block changes, else REQ_PAGES. */
    @Override
    public void requestPage(String blockIdstr, long offset, long length) throws IOException {
        if (main.paused) return;      // asked again after the resume (IncomingPostcopy.resendRequests)
        synchronized (lock) {
            if (blockIdstr != null) {
                lastRequestWire = blockIdstr.substring(main.options.blockPrefix().length());
            }
            buf.clear();
            encoder.writePageRequest(lastRequestWire, offset, (int) length, buf);
            buf.flip();
            try {
                while (buf.hasRemaining()) main.wire.write(buf);
            } catch (IOException e) {
                // the connection is lost: the stream thread finds out and pauses, or fails, the migration; the fault
                // thread must go on either way (its blocked guest threads need it after a resume)
                LOG.debug("migration {}: page request not sent: {}", main.id(), e.toString());
                main.closeQuietly();
                return;
            }
            requests++;
        }
        if (LOG.isDebugEnabled()) LOG.debug("migration {}: request {} 0x{}", main.id(), lastRequestWire, Long.toHexString(offset));
    }

    /** From the fault thread: the incoming postcopy failed; the stream thread ends the migration through the socket. */
    @Override
    public void failed(Throwable cause) {
        main.failAsync(cause);
    }

    /**
     * From the routing thread that resumes the migration: messages go to {@code c} from now on. The first request on
     * it names its block (a new encoder knows none). lastRequestWire stays: the fault thread names a block only when
     * it changes, and may ask for a page of the same block before its requests are sent again (seen with QEMU over
     * TLS: a null block, the fault thread failed).
     */
    void resumeOn(SocketChannel c, ByteChannel w) {
        synchronized (lock) {
            main.channel = c;
            main.wire = w;
            encoder = new ReturnPathEncoder();
        }
    }
}
