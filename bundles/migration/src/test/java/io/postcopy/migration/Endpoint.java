package io.postcopy.migration;

import io.postcopy.migration.standalone.Migrations;
import io.postcopy.backend.anon.standalone.AnonBackends;
import io.postcopy.backend.hugepage.standalone.HugePageBackends;
import io.postcopy.fault.standalone.FaultHandlers;
import io.postcopy.fault.FaultService;
import io.postcopy.policy.Policies;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.testkit.Await;
import io.postcopy.uffd.NativeMemory;
import java.time.Duration;

/** One side of a migration in this JVM: its own registry, fault service and migration service. */
final class Endpoint implements AutoCloseable {
    static final long PAGE = 4096;

    final RamBlockRegistry registry = RamBlocks.newRegistry();
    final io.postcopy.fault.standalone.StandaloneFaultService faults = FaultHandlers.newService(registry, Policies.newBalloonInhibitor(),
            Policies.newMemoryLockPolicy(false), Policies.newHugePagePolicy(true));
    final io.postcopy.migration.standalone.StandaloneMigrationService service;

    Endpoint() {
        this(Integer.getInteger("sndbuf", 128 * 1024), Integer.getInteger("rcvbuf", 128 * 1024), 64 * 1024);
    }

    Endpoint(int sendBuffer, int receiveBuffer, int stagingBatchSize) {
        faults.addBackend(AnonBackends.newBackend(), 0);
        faults.addBackend(HugePageBackends.newBackend(), 100);
        service = Migrations.newService(registry, faults, sendBuffer, receiveBuffer, stagingBatchSize, 64 << 20);
    }

    /** With the service configured as PID io.postcopy.migration would be ({@link Migrations#newService(RamBlockRegistry, FaultService, java.util.Map)}). */
    Endpoint(java.util.Map<String, ?> config) {
        faults.addBackend(AnonBackends.newBackend(), 0);
        faults.addBackend(HugePageBackends.newBackend(), 100);
        service = Migrations.newService(registry, faults, config);
    }

    /**
     * The destination guest that {@code IncomingOptions.onRun} starts: it is resumed from a thread of its own at
     * RUN, so a migration that ends right after RUN can complete first. Fails if it has not come within 10 s.
     */
    static io.postcopy.workload.Workload awaitGuest(java.util.concurrent.atomic.AtomicReference<io.postcopy.workload.Workload> ref) {
        return Await.until("the destination guest resumed at RUN", Duration.ofSeconds(10), ref::get, java.util.Objects::nonNull);
    }

    /**
     * Comm (the thread name, cut to 15 characters by the kernel) -> the highest value of {@code field} (index
     * after the comm in {@code /proc/self/task/TID/stat}: 16 = nice, 38 = policy) among this JVM's threads.
     */
    static java.util.Map<String, Integer> threadStat(int field) {
        java.util.Map<String, Integer> m = new java.util.HashMap<>();
        java.io.File[] tasks = new java.io.File("/proc/self/task").listFiles();
        if (tasks == null) return m;
        for (java.io.File t : tasks) {
            try {
                String stat = java.nio.file.Files.readString(t.toPath().resolve("stat"));
                String comm = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
                String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                m.merge(comm, Integer.parseInt(f[field]), Math::max);
            } catch (java.io.IOException | RuntimeException gone) {
                // the thread ended while we looked
            }
        }
        return m;
    }

    /** The calling thread's {@code /proc/PID/task/TID}, to be looked at from another thread. */
    static java.nio.file.Path thisThreadTask() {
        try {
            return java.nio.file.Path.of("/proc").resolve(java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/thread-self")));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * A thread's scheduling policy (0 SCHED_OTHER, 1 SCHED_FIFO) and nice value, from its {@code stat} (fields 41 and
     * 19) under {@code task}: {@code /proc/thread-self} for the calling thread, {@code /proc/PID/task/TID} for another.
     */
    static int[] policyAndNice(java.nio.file.Path task) {
        try {
            String stat = java.nio.file.Files.readString(task.resolve("stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return new int[] {Integer.parseInt(f[38]), Integer.parseInt(f[16])};
        } catch (java.nio.file.NoSuchFileException e) {
            throw new AssertionError("thread " + task + " ended before it could be looked at", e);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * The destination's guest: checking readers on {@code block} started at RUN (kept in {@code reader}), asked to
     * pause before a failing destination wakes them.
     */
    GuestControl readerGuest(String block, java.util.concurrent.atomic.AtomicReference<io.postcopy.workload.Workload> reader,
                             io.postcopy.workload.WorkloadOptions options) {
        return GuestControl.of(() -> {
            io.postcopy.workload.Workload w = reader.get();
            if (w != null) w.requestPause();
        }, () -> {
            io.postcopy.workload.Workload w = reader.get();
            if (w != null) w.pause();
        }, () -> reader.set(io.postcopy.workload.Workloads.start(registry.byName(block), options)));
    }

    /** Pages whose bytes differ between two blocks, compared with native memcmp (either may be uffd memory). */
    static long mismatchedPages(RamBlock a, RamBlock b) {
        if (a.usedLength() != b.usedLength()) throw new AssertionError("lengths differ");
        long n = 0;
        for (long o = 0; o < a.usedLength(); o += PAGE) {
            if (NativeMemory.nativeCompare(a.hostAddress() + o, b.hostAddress() + o, PAGE) != 0) n++;
        }
        return n;
    }

    @Override
    public void close() {
        service.close();
        registry.removeAll();
    }
}
