package io.postcopy.benchmarks;

import io.postcopy.backend.anon.standalone.AnonBackends;
import io.postcopy.fault.standalone.FaultHandlers;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.PageRequester;
import io.postcopy.policy.Policies;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.runner.IterationType;

/**
 * Fault → request latency inside one process. The benchmark thread is the vCPU: it reads a missing page with
 * a native memcpy (blocking in the kernel in native state) after stamping the time; the fault thread reads
 * the fault, de-duplicates and calls the {@link PageRequester}, which records (now - stamp) in an HdrHistogram
 * and places the page at once, waking the reader. The JMH score is the whole round trip (fault → fault thread →
 * request → UFFDIO_COPY → wake); the histogram, printed at the end of the trial, is fault → requestPage.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class FaultLatencyBenchmark {
    static final long PAGE = 4096, BLOCK = 512L << 20;

    final Histogram faultToRequest = new Histogram(1, TimeUnit.SECONDS.toNanos(10), 3);
    RamBlockRegistry registry;
    io.postcopy.fault.standalone.StandaloneFaultService service;
    RamBlock ram;
    IncomingPostcopy in;
    Mapping src;
    long buf;
    long next;
    int generation;
    volatile long stamp;
    volatile boolean measuring;

    @Setup(Level.Trial)
    public void setup() {
        registry = RamBlocks.newRegistry();
        service = FaultHandlers.newService(registry, Policies.newBalloonInhibitor(), Policies.newMemoryLockPolicy(false),
                Policies.newHugePagePolicy(true));
        service.addBackend(AnonBackends.newBackend(), 0);
        src = PlacementBenchmark.source(PAGE);
        buf = NativeMemory.allocate(PAGE);
        fresh();
    }

    /** A new migration over a fresh block: every page missing, nothing received or requested. */
    void fresh() {
        if (in != null) {
            in.cleanup();   // warns that pages never arrived: by design, the block was only partly read
            registry.remove(ram.idstr());
        }
        ram = registry.create("bench.lat." + generation++, BLOCK, RamBlock.Backing.ANONYMOUS);
        PageRequester requester = (block, offset, length) -> {
            long now = System.nanoTime();
            if (measuring) faultToRequest.recordValue(Math.max(1, now - stamp));
            in.placePages(ram, offset, src.address(), PAGE);
        };
        in = service.create("bench-latency", List.of(ram), requester);
        in.advise();
        in.listen();
        in.run();
        next = 0;
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams params) {
        measuring = params.getType() == IterationType.MEASUREMENT;   // the histogram holds measurement samples only
        if (next > BLOCK / 2) fresh();
    }

    @Benchmark
    public long faultRoundTrip() {
        if (next == BLOCK) fresh();   // rare: a fresh block mid-iteration
        long addr = ram.hostAddress() + next;
        next += PAGE;
        stamp = System.nanoTime();
        NativeMemory.nativeCopy(addr, buf, 8);   // faults; returns once the page is placed
        return NativeMemory.getLong(buf);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        in.cleanup();
        registry.removeAll();
        Histogram h = faultToRequest;
        System.out.printf("%nfault -> PageRequester.requestPage (ns): n=%d p50=%d p90=%d p99=%d p99.9=%d max=%d mean=%.0f%n",
                h.getTotalCount(), h.getValueAtPercentile(50), h.getValueAtPercentile(90), h.getValueAtPercentile(99),
                h.getValueAtPercentile(99.9), h.getMaxValue(), h.getMean());
        src.close();
        NativeMemory.free(buf);
    }
}
