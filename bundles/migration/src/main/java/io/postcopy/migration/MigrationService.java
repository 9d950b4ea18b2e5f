package io.postcopy.migration;

import java.net.InetSocketAddress;
import java.util.List;
import java.util.Optional;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Starts migrations of the RAM blocks of one {@link io.postcopy.ramblock.RamBlockRegistry}. In OSGi a DS
 * component (PID {@code io.postcopy.migration}) that takes {@link DeviceStateHandler} and {@link MigrationListener}
 * services as a whiteboard (register one to add it); without a framework,
 * {@code io.postcopy.migration.standalone.Migrations.newService}, which takes them by hand.
 */
@ProviderType
public interface MigrationService {
    /**
     * Listens for incoming migrations; {@code bind} null means 127.0.0.1 on an ephemeral port (or the
     * configured listen address). An address other than loopback needs TLS ({@link IncomingOptions#tls()}) or an
     * explicit {@link IncomingOptions#insecure()}.
     *
     * @throws MigrationException when the address cannot be bound, the TLS credentials cannot be loaded, or a
     *     non-loopback address has neither TLS nor insecure
     */
    IncomingListener listen(InetSocketAddress bind, IncomingOptions options);

    /** Starts migrating to {@code target}; returns at once (connecting is part of SETUP). */
    OutgoingMigration migrate(InetSocketAddress target, OutgoingOptions options);

    /** Every migration started or accepted by this service, oldest first. */
    List<Migration> migrations();

    Optional<Migration> get(String id);

    List<IncomingListener> listeners();

    /**
     * What encrypts TLS records on this host: {@code "BoringSSL (netty-tcnative)"}, or {@code "JDK"} followed by
     * why BoringSSL is not used (it costs 3-4 times more CPU per byte).
     *
     * @since 1.5
     */
    String tlsEngine();
}
