package io.postcopy.benchmarks;

import io.postcopy.backend.anon.standalone.AnonBackends;
import io.postcopy.fault.standalone.FaultHandlers;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.policy.Policies;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.RegisterMode;
import io.postcopy.uffd.UffdFeature;
import io.postcopy.uffd.Userfaultfd;
import java.util.EnumSet;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Placement throughput: {@code IncomingPostcopy.placePages} through the anon backend (the whole path: state
 * check, block lookup, range check, backend read lock, UFFDIO_COPY, received bitmap, statistics) against a
 * plain C-like loop of raw {@code Userfaultfd.copy} calls on the same sizes. One operation = one run of
 * {@code runBytes}; an invocation is a batch of {@link #RUNS} runs covering a region that the invocation's
 * setup has emptied again (MADV_DONTNEED), so every copy lands on missing pages. Bytes/s = ops/s x runBytes.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class PlacementBenchmark {
    static final int RUNS = 1024;

    /** A source buffer of one run, page aligned, with content. */
    static Mapping source(long bytes) {
        Mapping m = Mapping.anonymous(bytes);
        for (long o = 0; o < bytes; o += 8) NativeMemory.putLong(m.address() + o, o * 0x9E3779B97F4A7C15L);
        return m;
    }

    @State(Scope.Thread)
    public static class Fault {
        @Param({"4096", "65536"})
        long runBytes;

        RamBlockRegistry registry;
        RamBlock ram;
        IncomingPostcopy in;
        Mapping src;

        @Setup(Level.Trial)
        public void setup() {
            registry = RamBlocks.newRegistry();
            io.postcopy.fault.standalone.StandaloneFaultService service = FaultHandlers.newService(registry, Policies.newBalloonInhibitor(),
                    Policies.newMemoryLockPolicy(false), Policies.newHugePagePolicy(true));
            service.addBackend(AnonBackends.newBackend(), 0);
            ram = registry.create("bench.ram", RUNS * runBytes, RamBlock.Backing.ANONYMOUS);
            src = source(runBytes);
            in = service.create("bench", java.util.List.of(ram), (block, offset, length) -> {
                throw new IllegalStateException("no fault expected in the placement benchmark");
            });
            in.advise();
            in.listen();
            in.run();
        }

        @Setup(Level.Invocation)
        public void empty() {
            ram.discard(0, ram.usedLength());   // MADV_DONTNEED: every page missing again (still registered)
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            in.cleanup();
            registry.removeAll();
            src.close();
        }
    }

    @State(Scope.Thread)
    public static class Raw {
        @Param({"4096", "65536"})
        long runBytes;

        Userfaultfd uffd;
        Mapping ram, src;

        @Setup(Level.Trial)
        public void setup() {
            uffd = Userfaultfd.open(Userfaultfd.O_CLOEXEC | Userfaultfd.O_NONBLOCK);
            uffd.api(EnumSet.noneOf(UffdFeature.class));
            ram = Mapping.anonymous(RUNS * runBytes);
            uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
            src = source(runBytes);
        }

        @Setup(Level.Invocation)
        public void empty() {
            NativeMemory.madvise(ram.address(), ram.length(), NativeMemory.MADV_DONTNEED);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            uffd.unregister(ram.address(), ram.length());
            uffd.close();
            ram.close();
            src.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(RUNS)
    public long placePages(Fault s) {
        long n = 0, run = s.runBytes, src = s.src.address();
        for (long o = 0, end = RUNS * run; o < end; o += run) n += s.in.placePages(s.ram, o, src, run);
        if (n != RUNS * run) throw new IllegalStateException("placed " + n + " of " + RUNS * run + ": the region was not empty");
        return n;
    }

    /** The baseline: what a C loop over UFFDIO_COPY does, through the same binding. */
    @Benchmark
    @OperationsPerInvocation(RUNS)
    public long rawCopy(Raw s) {
        long n = 0, run = s.runBytes, src = s.src.address(), dst = s.ram.address();
        for (long o = 0, end = RUNS * run; o < end; o += run) n += s.uffd.copy(dst + o, src, run, 0);
        if (n != RUNS * run) throw new IllegalStateException("placed " + n + " of " + RUNS * run + ": the region was not empty");
        return n;
    }
}
