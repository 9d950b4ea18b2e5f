package io.postcopy.fault.internal;

import io.postcopy.fault.BackendInfo;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.PageRequester;
import io.postcopy.fault.PlacementBackend;
import io.postcopy.fault.PostcopyException;
import io.postcopy.policy.BalloonInhibitor;
import io.postcopy.policy.HugePagePolicy;
import io.postcopy.policy.MemoryLockPolicy;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.uffd.HostSupport;
import io.postcopy.uffd.HostSupportReport;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/** The fault service without OSGi: the DS component and plain-Java users share it. */
public final class FaultServiceImpl implements io.postcopy.fault.standalone.StandaloneFaultService {
    /** A backend with its service ranking; ties keep the order of arrival. */
    record Ranked(PlacementBackend backend, int ranking) {}

    private final RamBlockRegistry registry;
    private final BalloonInhibitor balloon;
    private final MemoryLockPolicy memoryLock;
    private final HugePagePolicy hugePages;
    // set by configure: FaultServiceConfig's defaults until DS or a factory says otherwise
    private volatile int faultBatch;
    private volatile long backendWaitNanos;
    private volatile int faultThreadNice, faultThreadFifoPriority;
    private final List<Ranked> backends = new ArrayList<>();   // guarded by this; sorted by ranking, highest first
    private volatile List<Ranked> snapshot = List.of();
    private final List<Incoming> incoming = new CopyOnWriteArrayList<>();

    public FaultServiceImpl(RamBlockRegistry registry, BalloonInhibitor balloon, MemoryLockPolicy memoryLock,
                            HugePagePolicy hugePages) {
        this.registry = registry;
        this.balloon = balloon;
        this.memoryLock = memoryLock;
        this.hugePages = hugePages;
        configure(config(java.util.Map.of()));
    }

    /** A configuration from properties as PID {@code io.postcopy.fault} names them; absent ones keep their defaults. */
    public static FaultServiceConfig config(java.util.Map<String, ?> properties) {
        return org.osgi.util.converter.Converters.standardConverter().convert(properties).to(FaultServiceConfig.class);
    }

    public void configure(FaultServiceConfig c) {
        int fifo = c.faultThreadFifoPriority(), nice = c.faultThreadNice(), batch = c.faultBatch();
        if (fifo < 0 || fifo > 99) throw new IllegalArgumentException("faultThreadFifoPriority " + fifo + " not in 0..99");
        if (nice < -20 || nice > 19) throw new IllegalArgumentException("faultThreadNice " + nice + " not in -20..19");
        if (batch < 1 || batch > 4096) throw new IllegalArgumentException("faultBatch " + batch + " not in 1..4096");
        this.faultThreadFifoPriority = fifo;
        this.faultThreadNice = nice;
        this.faultBatch = batch;
        this.backendWaitNanos = TimeUnit.MILLISECONDS.toNanos(c.backendWaitMillis());
    }

    RamBlockRegistry registry() { return registry; }
    BalloonInhibitor balloon() { return balloon; }
    MemoryLockPolicy memoryLock() { return memoryLock; }
    HugePagePolicy hugePages() { return hugePages; }
    int faultBatch() { return faultBatch; }
    long backendWaitNanos() { return backendWaitNanos; }
    int faultThreadNice() { return faultThreadNice; }
    int faultThreadFifoPriority() { return faultThreadFifoPriority; }

    HostSupportReport probe(long targetPageSize) {
        return HostSupport.probe(targetPageSize);
    }

    @Override
    public IncomingPostcopy create(String id, List<RamBlock> blocks, PageRequester requester) {
        if (blocks.isEmpty()) throw new PostcopyException("migration " + id + ": no blocks");
        synchronized (this) {
            for (RamBlock b : blocks) {
                if (registry.byName(b.idstr()) != b)
                    throw new PostcopyException("block " + b.idstr() + " is not in the RAM-block registry");
                for (Incoming other : incoming)
                    for (BlockState s : other.states)
                        if (s.block == b) throw new PostcopyException("block " + b.idstr() + " already belongs to migration " + other.id());
            }
            for (Incoming other : incoming)
                if (other.id().equals(id)) throw new PostcopyException("a migration with id " + id + " is already live");
            Incoming in = new Incoming(id, blocks, requester, this);
            for (BlockState s : in.states) s.reselect(snapshot);
            incoming.add(in);
            return in;
        }
    }

    void ended(Incoming in) {
        incoming.remove(in);
    }

    @Override
    public List<IncomingPostcopy> incoming() {
        return List.copyOf(incoming);
    }

    @Override
    public List<BackendInfo> backends() {
        List<BackendInfo> out = new ArrayList<>();
        for (Ranked r : snapshot) {
            List<String> using = new ArrayList<>();
            for (Incoming in : incoming)
                for (BlockState s : in.states) if (s.backend == r.backend()) using.add(s.block.idstr());
            out.add(new BackendInfo(r.backend().name(), r.ranking(), r.backend().supportedKinds(), List.copyOf(using)));
        }
        return out;
    }

    @Override
    public void addBackend(PlacementBackend backend, int ranking) {
        synchronized (this) {
            int at = 0;
            while (at < backends.size() && backends.get(at).ranking() >= ranking) at++;
            backends.add(at, new Ranked(backend, ranking));
            snapshot = List.copyOf(backends);
        }
        reselectAll();
    }

    @Override
    public void removeBackend(PlacementBackend backend) {
        synchronized (this) {
            backends.removeIf(r -> r.backend() == backend);
            snapshot = List.copyOf(backends);
        }
        reselectAll();
    }

    private void reselectAll() {
        List<Ranked> now = snapshot;
        for (Incoming in : incoming)
            for (BlockState s : in.states) s.reselect(now);
    }

    /** Ends every live migration (service going away). */
    public void shutdown() {
        for (Incoming in : incoming) in.cleanup();
    }
}
