package io.postcopy.migration.internal.destination;

import java.io.IOException;
import java.net.SocketOption;
import java.nio.channels.SocketChannel;

/**
 * Acknowledges at once what a receiving socket got. QEMU 7.2 does not set TCP_NODELAY on its migration sockets,
 * so Nagle holds each write shorter than the MSS (its 32 KiB buffer flushes; a 4 KiB requested page on the
 * postcopy-preempt channel) until the previous one is acknowledged, and Linux delays acknowledgements by up to
 * 40 ms: a requested page could wait that long. TCP_QUICKACK is not sticky, so it is set again after each read.
 *
 * <p>Stateless: the stream thread and the preempt channel's thread each call it on their own socket.
 */
final class QuickAck {
    private static final SocketOption<Boolean> OPTION = jdk.net.ExtendedSocketOptions.TCP_QUICKACK;

    private QuickAck() {}

    /** Whether {@code c} supports TCP_QUICKACK (Linux). */
    static boolean supported(SocketChannel c) {
        return c.supportedOptions().contains(OPTION);
    }

    static void now(SocketChannel c) throws IOException {
        c.setOption(OPTION, true);
    }
}
