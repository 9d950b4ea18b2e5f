package io.postcopy.backend.hugepage;

import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.test.RecordingRequester;
import io.postcopy.testkit.RequestLog;
import io.postcopy.testkit.VcpuReader;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A fault storm over one or more blocks: native readers fault on random target pages, a source thread
 * serves requests first (whole units, under each block's stream lock), and the caller's thread feeds the
 * background stream step by step with a hook before each step (for hot swaps).
 */
final class Storm {
    interface Hook {
        void beforeStep(int step) throws Exception;
    }

    final IncomingPostcopy in;
    final RecordingRequester requests;
    final List<HugeGuest.Stream> streams;
    final AtomicLong mismatches = new AtomicLong();
    final AtomicReference<Throwable> sourceError = new AtomicReference<>();
    final List<VcpuReader> readers = new ArrayList<>();
    private final AtomicBoolean stop = new AtomicBoolean();
    private Thread source;

    Storm(IncomingPostcopy in, RecordingRequester requests, List<HugeGuest.Stream> streams) {
        this.in = in;
        this.requests = requests;
        this.streams = streams;
    }

    static int shape(long unit) {
        return (int) (unit % 4);
    }

    void start(int readersPerBlock, int reads) {
        int t = 0;
        for (HugeGuest.Stream s : streams)
            for (int i = 0; i < readersPerBlock; i++, t++)
                readers.add(VcpuReader.randomPages(s.block, reads, 1000 + t).expect(s.image).countInto(mismatches)
                        .named("reader-" + s.block.idstr() + "-" + (1000 + t)));
        readers.forEach(Thread::start);
        source = new Thread(() -> {
            try {
                while (!stop.get()) {
                    RequestLog.Request r = requests.queue.poll(10, TimeUnit.MILLISECONDS);
                    if (r == null) continue;
                    for (HugeGuest.Stream s : streams)
                        if (s.block.idstr().equals(r.block())) s.sendHugePage(r.offset() / s.huge, shape(r.offset() / s.huge));
                }
            } catch (InterruptedException ignored) {
                // done
            } catch (Throwable e) {
                sourceError.set(e);
            }
        }, "source");
        source.start();
    }

    /** Feeds every block in {@code steps} steps, sleeping between steps so that readers fault on pages not yet sent. */
    void feed(int steps, long sleepMillis, Hook hook) throws Exception {
        long[] next = new long[streams.size()];
        for (int step = 0; step < steps; step++) {
            hook.beforeStep(step);
            for (int i = 0; i < streams.size(); i++) {
                HugeGuest.Stream s = streams.get(i);
                long end = step == steps - 1 ? s.units() : Math.min(s.units(), (step + 1) * s.units() / steps);
                while (next[i] < end) {
                    long u = next[i];
                    if (u % 8 == 6 && u + 1 < s.units()) {
                        s.sendPairSpanning(u);
                        next[i] += 2;
                    } else {
                        s.sendHugePage(u, shape(u));
                        next[i]++;
                    }
                }
            }
            Thread.sleep(sleepMillis);
        }
    }

    /** Waits for every reader (a reader still blocked is a lost wakeup), then stops the source. Returns readers still alive. */
    long finish(long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        for (VcpuReader r : readers) r.join(Math.max(1, deadline - System.currentTimeMillis()));
        stop.set(true);
        source.join(10_000);
        return readers.stream().filter(Thread::isAlive).count();
    }
}
