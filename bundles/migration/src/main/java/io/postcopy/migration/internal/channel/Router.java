package io.postcopy.migration.internal.channel;

import io.postcopy.codec.Wire;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.internal.AbstractMigration;
import io.postcopy.migration.internal.destination.Destination;
import io.postcopy.migration.internal.MigrationServiceImpl;
import io.postcopy.migration.internal.Refused;
import io.postcopy.migration.internal.Settings;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.util.List;

/**
 * Decides what a new connection of a listener is by its first bytes (with TLS, after its handshake and client
 * certificate), the one place that does; nothing is decided by host, time or silence:
 * <ul>
 * <li>QEMU's magic: a migration's main stream; only now it becomes a migration, {@code in-N};</li>
 * <li>our source's extra channel: {@link Wire#CHANNEL_MAGIC} and a token that a live migration of this listener
 * announced on its main stream ({@code CHANNEL_TOKEN}): that migration's postcopy-preempt channel;</li>
 * <li>our source resuming: {@link Wire#RESUME_MAGIC} and the token of a paused migration of this listener;</li>
 * <li>QEMU's multifd magic, anything else, or nothing within {@code firstBytesTimeoutMillis}: refused with one log
 * line, nothing read into memory, no migration.</li>
 * </ul>
 * Runs on the listener's routing threads, one connection each; that thread then runs what the connection proved to
 * be (renamed {@code postcopy-in-N} for a main stream). The multifd note is written by them and read by migrations'
 * stream threads.
 */
final class Router {
    private final MigrationServiceImpl service;
    private final Listener listener;
    private final IncomingOptions options;
    /** The listener's migrations, its {@link Listener#migrations()}. */
    private final List<IncomingMigration> migrations;
    private final ChannelTokens tokens;
    private final FirstBytes firstBytes;
    /** The last multifd channel refused: from where, when. */
    private volatile InetAddress multifdHost;
    private volatile long multifdNanos;

    Router(MigrationServiceImpl service, Listener listener, IncomingOptions options, List<IncomingMigration> migrations,
           ChannelTokens tokens, FirstBytes firstBytes) {
        this.service = service;
        this.listener = listener;
        this.options = options;
        this.migrations = migrations;
        this.tokens = tokens;
        this.firstBytes = firstBytes;
    }

    /**
     * A connection that must show what it is by its first bytes. {@code qemu}: under QEMU's rule, the slot this
     * connection opens as a main connection (told whether it became a migration); null otherwise, and then our
     * source's channels and resumes are taken too.
     */
    void route(SocketChannel c, String peer, QemuRule.Slot qemu) {
        ByteBuffer buf = Destination.receiveBuffer();
        try {
            c.configureBlocking(true);
            ByteChannel io = firstBytes.secure(c, peer);
            if (!firstBytes.read(c, io, buf, 4)) {
                throw new Refused(io != c ? "no bytes within " + firstBytes.millis() + " ms after the TLS handshake"
                        : buf.position() == 0 ? "nothing within " + firstBytes.millis() + " ms"
                        : "fewer than 4 bytes within " + firstBytes.millis() + " ms");
            }
            int magic = buf.getInt(0);
            if (magic == Wire.MAGIC) {
                Destination d = service.newIncoming(c, io, options, listener);
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
        } catch (IOException | RuntimeException e) {
            if (qemu != null) qemu.refused = true;
            firstBytes.refuse(c, peer, firstBytes.why(e));
        }
    }

    /** Our source's channel: the token must be one a live migration announced (it may come a moment later). */
    private void routeTokenChannel(SocketChannel c, ByteChannel io, String peer, ByteBuffer buf) throws IOException {
        byte[] token = readToken(c, io, buf, "channel");
        Destination main = tokens.claim(token, System.nanoTime() + firstBytes.nanos());
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
        if (!firstBytes.read(c, io, buf, need))
            throw new Refused("no complete " + what + " token within " + firstBytes.millis() + " ms");
        byte[] token = new byte[Wire.CHANNEL_TOKEN_BYTES];
        buf.get(4, token);
        buf.flip().position(need);
        buf.compact();
        return token;
    }

    /** Notes that a QEMU multifd channel from {@code c}'s host was refused now; returns the reason to refuse it with. */
    String multifdRefused(SocketChannel c) {
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
    boolean multifdRefusedFrom(InetAddress host, long sinceNanos) {
        return host != null && host.equals(multifdHost) && multifdNanos - sinceNanos >= 0;
    }
}
