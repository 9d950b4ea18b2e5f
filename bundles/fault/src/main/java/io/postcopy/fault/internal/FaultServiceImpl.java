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
public final class FaultServiceImpl implements FaultService {
    /** A backend with its service ranking; ties keep the order of arrival. */
    record Ranked(PlacementBackend backend, int ranking) {}

    private final RamBlockRegistry registry;
    private final BalloonInhibitor balloon;
    private final MemoryLockPolicy memoryLock;
    private final HugePagePolicy hugePages;
    private volatile int faultBatch = 64;
    private volatile long backendWaitNanos = TimeUnit.SECONDS.toNanos(30);
    private volatile int faultThreadNice = -5, faultThreadFifoPriority = 1;
    private final List<Ranked> backends = new ArrayList<>();   // guarded by this; sorted by ranking, highest first
    private volatile List<Ranked> snapshot = List.of();
    private final List<Incoming> incoming = new CopyOnWriteArrayList<>();

    public FaultServiceImpl(RamBlockRegistry registry, BalloonInhibitor balloon, MemoryLockPolicy memoryLock,
                            HugePagePolicy hugePages) {
        this.registry = registry;
        this.balloon = balloon;
        this.memoryLock = memoryLock;
        this.hugePages = hugePages;
    }

    public void configure(int faultBatch, long backendWaitMillis, int faultThreadNice) {
        configure(faultBatch, backendWaitMillis, faultThreadNice, 1);
    }

    public void configure(int faultBatch, long backendWaitMillis, int faultThreadNice, int faultThreadFifoPriority) {
        if (faultThreadFifoPriority < 0 || faultThreadFifoPriority > 99)
            throw new IllegalArgumentException("faultThreadFifoPriority " + faultThreadFifoPriority + " not in 0..99");
        this.faultThreadFifoPriority = faultThreadFifoPriority;
        if (faultThreadNice < -20 || faultThreadNice > 19) throw new IllegalArgumentException("faultThreadNice " + faultThreadNice + " not in -20..19");
        this.faultThreadNice = faultThreadNice;
        if (faultBatch < 1 || faultBatch > 4096) throw new IllegalArgumentException("faultBatch " + faultBatch + " not in 1..4096");
        this.faultBatch = faultBatch;
        this.backendWaitNanos = TimeUnit.MILLISECONDS.toNanos(backendWaitMillis);
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
