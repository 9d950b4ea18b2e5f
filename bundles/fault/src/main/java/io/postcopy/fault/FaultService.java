package io.postcopy.fault;

import io.postcopy.ramblock.RamBlock;
import java.util.List;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Creates incoming postcopy states over the placement backends it has. In OSGi the backends are the
 * {@link PlacementBackend} services (a whiteboard: register one to add it); without a framework,
 * {@code io.postcopy.fault.standalone.FaultHandlers} makes a service that takes them by hand.
 */
@ProviderType
public interface FaultService {
    /**
     * A new incoming migration over {@code blocks} (registered in the service's RAM-block registry),
     * requesting pages through {@code requester}. Blocks may not belong to another live migration. Each block
     * is leased ({@code migration ID}) until {@link IncomingPostcopy#cleanup()}: it cannot be removed meanwhile,
     * and a forced removal fails the migration through {@link PageRequester#failed}.
     */
    IncomingPostcopy create(String id, List<RamBlock> blocks, PageRequester requester);

    /** The live incoming migrations. */
    List<IncomingPostcopy> incoming();

    /** Bound backends, highest ranking first. */
    List<BackendInfo> backends();
}
