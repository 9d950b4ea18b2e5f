package io.postcopy.uffd;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** setpriority on one thread (Linux: per thread), read back with getpriority and /proc. */
class ThreadNiceTest {
    private static int procNice(int tid) throws Exception {
        String stat = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/task/" + tid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Integer.parseInt(f[16]);     // field 19 (nice), counted from field 3 (state)
    }

    @Test
    void niceAppliesToTheCallingThreadOnly() throws Exception {
        int before = NativeMemory.threadNice();
        AtomicInteger seen = new AtomicInteger(99), tid = new AtomicInteger();
        AtomicReference<Boolean> raised = new AtomicReference<>();
        Thread t = new Thread(() -> {
            tid.set(NativeMemory.gettid());
            assertThat(NativeMemory.setThreadNice(7)).isTrue();      // lowering one's priority is always allowed
            seen.set(NativeMemory.threadNice());
            raised.set(NativeMemory.setThreadNice(-3));              // raising needs CAP_SYS_NICE
        });
        t.start();
        t.join();
        assertThat(seen.get()).isEqualTo(7);
        assertThat(NativeMemory.threadNice()).as("this thread is untouched").isEqualTo(before);
        assertThat(procNice(NativeMemory.gettid())).isEqualTo(before);
        boolean root = "root".equals(System.getProperty("user.name"));
        assertThat(raised.get()).as("raising the priority as %s", System.getProperty("user.name")).isEqualTo(root);

        Thread u = new Thread(() -> {
            tid.set(NativeMemory.gettid());
            NativeMemory.setThreadNice(5);
            synchronized (tid) {
                tid.notifyAll();
                try {
                    tid.wait(5000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        synchronized (tid) {
            tid.set(0);
            u.start();
            while (tid.get() == 0) tid.wait(10);
            tid.wait(50);
            assertThat(procNice(tid.get())).as("the kernel's view of that thread").isEqualTo(5);
            tid.notifyAll();
        }
        u.join();
    }

    @Test
    void realtimeAppliesToTheCallingThreadOnly() throws Exception {
        AtomicInteger policy = new AtomicInteger(-1), tid = new AtomicInteger();
        AtomicReference<Boolean> set = new AtomicReference<>();
        Thread t = new Thread(() -> {
            tid.set(NativeMemory.gettid());
            set.set(NativeMemory.setThreadRealtime(1));
            policy.set(NativeMemory.threadPolicy());
        });
        t.start();
        t.join();
        boolean root = "root".equals(System.getProperty("user.name"));
        assertThat(set.get()).as("SCHED_FIFO as %s", System.getProperty("user.name")).isEqualTo(root);
        assertThat(policy.get()).isEqualTo(root ? 1 : 0);
        assertThat(NativeMemory.threadPolicy()).as("this thread is untouched").isZero();
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> NativeMemory.setThreadRealtime(0))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
