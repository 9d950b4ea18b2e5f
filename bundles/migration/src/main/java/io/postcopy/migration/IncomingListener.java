package io.postcopy.migration;

import java.net.InetSocketAddress;
import java.util.List;
import org.osgi.annotation.versioning.ProviderType;

/** A listening socket: every migration stream it accepts becomes an {@link IncomingMigration}; they run concurrently. */
@ProviderType
public interface IncomingListener extends AutoCloseable {
    InetSocketAddress address();

    int port();

    /** The migrations accepted so far, oldest first. */
    List<IncomingMigration> migrations();

    /** The options it was opened with (TLS, QEMU's preempt rule, insecure, ...). */
    IncomingOptions options();

    /** Stops accepting; running migrations go on. */
    @Override
    void close();
}
