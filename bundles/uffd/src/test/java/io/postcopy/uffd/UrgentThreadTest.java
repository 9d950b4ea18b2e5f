package io.postcopy.uffd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A real SCHED_FIFO thread that floods (spins, as a thread fed by a flooding peer would) must drop to ordinary
 * priority once the JVM-wide budget is spent, and get real time back once it refills.
 */
class UrgentThreadTest {
    private static final boolean ROOT = "root".equals(System.getProperty("user.name"));

    /** Spins until the thread has used {@code nanos} more CPU. */
    private static void burn(long nanos) {
        long until = NativeMemory.threadCpuNanos() + nanos;
        while (NativeMemory.threadCpuNanos() < until) Thread.onSpinWait();
    }

    private static <T> T onThread(java.util.concurrent.Callable<T> body) throws Exception {
        AtomicReference<Object> out = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                out.set(body.call());
            } catch (Throwable e) {
                out.set(e);
            }
        }, "urgent-test");
        t.start();
        t.join(30_000);
        assertThat(t.isAlive()).as("test thread still running").isFalse();
        if (out.get() instanceof Throwable e) throw new AssertionError(e);
        @SuppressWarnings("unchecked") T v = (T) out.get();
        return v;
    }

    record Flood(boolean startedRealtime, long realtimeCpu, long elapsed, int policyAfter, int niceAfter,
                 boolean realtimeAfterRest, int policyAfterRest) {}

    @Test
    void aFloodingThreadIsCappedByTheBudgetAndGetsRealTimeBack() throws Exception {
        assumeTrue(ROOT, "SCHED_FIFO needs CAP_SYS_NICE: run as root (CI does); the refusal is tested below");
        long burst = 4_000_000;
        UrgentThread.budget(20, burst);
        long demotionsBefore = UrgentThread.demotions();
        Flood f = onThread(() -> {
            Thread.sleep(50);                              // a full bucket, whatever ran before
            UrgentThread u = UrgentThread.enter(1, -3);
            boolean started = u.realtime() && NativeMemory.threadPolicy() == 1;
            long t0 = System.nanoTime(), rtCpu = 0;
            for (int i = 0; i < 1000; i++) {               // 200 ms of CPU in 200 µs pieces of work
                boolean rt = u.realtime();
                long c0 = NativeMemory.threadCpuNanos();
                burn(200_000);
                if (rt) rtCpu += NativeMemory.threadCpuNanos() - c0;
                u.charge();
            }
            long elapsed = System.nanoTime() - t0;
            int policy = NativeMemory.threadPolicy(), nice = NativeMemory.threadNice();
            Thread.sleep(60);                              // 20 % of 60 ms = 12 ms > the debt (4) + half the burst
            u.charge();
            return new Flood(started, rtCpu, elapsed, policy, nice, u.realtime(), NativeMemory.threadPolicy());
        });
        assertThat(f.startedRealtime()).as("SCHED_FIFO at enter").isTrue();
        assertThat(f.policyAfter()).as("policy after the flood").isZero();
        assertThat(f.niceAfter()).as("nice after the flood").isEqualTo(-3);
        assertThat(UrgentThread.demotions()).isGreaterThan(demotionsBefore);
        // the cap: a full bucket plus its refill while the flood ran, plus one piece of work of overshoot per switch
        long cap = burst + f.elapsed() / 100 * 20;
        long slack = 3_000_000;
        assertThat(f.realtimeCpu()).as("CPU used at real-time priority in %d ms", f.elapsed() / 1_000_000)
                .isLessThanOrEqualTo(cap + slack)
                .isGreaterThanOrEqualTo(burst);           // and it did get real time while within the budget
        assertThat(f.realtimeAfterRest()).as("real time again after resting").isTrue();
        assertThat(f.policyAfterRest()).isEqualTo(1);
    }

    @Test
    void refusalIsReportedAndFairPolicyAppliesNice() throws Exception {
        String[] r = onThread(() -> {
            UrgentThread u = UrgentThread.enter(1, -2);
            String first = u.scheduling() + "|" + u.refused() + "|" + NativeMemory.threadPolicy();
            boolean fair = NativeMemory.setThreadFair(4);         // lowering is always allowed
            return new String[] {first, fair + "|" + NativeMemory.threadPolicy() + "|" + NativeMemory.threadNice()};
        });
        if (ROOT) {
            assertThat(r[0]).startsWith("SCHED_FIFO 1 within").endsWith("|false|1");
        } else {
            System.err.println("UrgentThreadTest: not root, only the refusal path is tested");
            assertThat(r[0]).isEqualTo("default (refused: needs CAP_SYS_NICE)|true|0");
        }
        assertThat(r[1]).as("SCHED_OTHER at nice 4, from SCHED_FIFO when root").isEqualTo("true|0|4");
        assertThat(onThread(() -> UrgentThread.enter(0, 0).scheduling())).isEqualTo("default");
        assertThatThrownBy(() -> UrgentThread.enter(100, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> UrgentThread.budget(0, 1_000_000)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> NativeMemory.setThreadFair(20)).isInstanceOf(IllegalArgumentException.class);
    }
}
