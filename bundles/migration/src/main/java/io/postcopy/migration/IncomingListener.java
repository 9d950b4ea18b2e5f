package io.postcopy.migration;

import java.net.InetSocketAddress;
import java.util.List;
import org.osgi.annotation.versioning.ProviderType;

/** A listening socket: every accepted connection becomes an {@link IncomingMigration}; they run concurrently. */
@ProviderType
public interface IncomingListener extends AutoCloseable {
    InetSocketAddress address();

    int port();

    /** The migrations accepted so far, oldest first. */
    List<IncomingMigration> migrations();

    /** Stops accepting; running migrations go on. */
    @Override
    void close();
}
