package io.postcopy.fault.internal;

import io.postcopy.fault.BackendInfo;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.PageRequester;
import io.postcopy.fault.PlacementBackend;
import io.postcopy.policy.BalloonInhibitor;
import io.postcopy.policy.HugePagePolicy;
import io.postcopy.policy.MemoryLockPolicy;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import java.util.List;
import java.util.Map;
import org.osgi.framework.Constants;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.metatype.annotations.Designate;

/**
 * The fault service in OSGi. Placement backends are bound dynamically and greedily, so installing,
 * starting, stopping or updating a backend bundle switches blocks to the best backend between placements.
 */
@Component(service = FaultService.class, immediate = true, configurationPid = "io.postcopy.fault")
@Designate(ocd = FaultServiceConfig.class)
public class FaultServiceComponent implements FaultService {
    private final FaultServiceImpl impl;

    @Activate
    public FaultServiceComponent(@Reference RamBlockRegistry registry, @Reference BalloonInhibitor balloon,
                                 @Reference MemoryLockPolicy memoryLock, @Reference HugePagePolicy hugePages,
                                 FaultServiceConfig config) {
        impl = new FaultServiceImpl(registry, balloon, memoryLock, hugePages);
        impl.configure(config);
    }

    @Modified
    void modified(FaultServiceConfig config) {
        impl.configure(config);
    }

    @Deactivate
    void deactivate() {
        impl.shutdown();
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void bindBackend(PlacementBackend backend, Map<String, Object> props) {
        impl.addBackend(backend, ranking(props));
    }

    void updatedBackend(PlacementBackend backend, Map<String, Object> props) {
        impl.removeBackend(backend);
        impl.addBackend(backend, ranking(props));
    }

    void unbindBackend(PlacementBackend backend) {
        impl.removeBackend(backend);
    }

    /**
     * The backend's service.ranking. Config Admin files (etc/*.cfg) carry every value as text, so a ranking set
     * there arrives as a String: read numbers and numeric strings alike.
     */
    static int ranking(Map<String, Object> props) {
        Object r = props.get(Constants.SERVICE_RANKING);
        if (r instanceof Number) return ((Number) r).intValue();
        if (r instanceof String) {
            try {
                return Integer.parseInt(((String) r).trim());
            } catch (NumberFormatException e) {
                return 0;
            }
        }
        return 0;
    }

    @Override
    public IncomingPostcopy create(String id, List<RamBlock> blocks, PageRequester requester) {
        return impl.create(id, blocks, requester);
    }

    @Override
    public List<IncomingPostcopy> incoming() {
        return impl.incoming();
    }

    @Override
    public List<BackendInfo> backends() {
        return impl.backends();
    }
}
