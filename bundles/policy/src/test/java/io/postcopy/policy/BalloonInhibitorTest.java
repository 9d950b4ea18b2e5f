package io.postcopy.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

class BalloonInhibitorTest {
    /** Records what it is told, and fails if told the same thing twice in a row. */
    static final class RecordingDevice implements BalloonDevice {
        final List<String> events = Collections.synchronizedList(new ArrayList<>());
        private boolean forbidden;

        @Override
        public synchronized void inflationForbidden() {
            if (forbidden) throw new AssertionError("forbidden twice");
            forbidden = true;
            events.add("forbidden");
        }

        @Override
        public synchronized void inflationAllowed() {
            if (!forbidden) throw new AssertionError("allowed twice");
            forbidden = false;
            events.add("allowed");
        }
    }

    @Test
    void devicesAreToldOnlyOnTheFirstInhibitAndTheLastRelease() {
        BalloonInhibitor inhibitor = Policies.newBalloonInhibitor();
        RecordingDevice device = new RecordingDevice();
        inhibitor.addDevice(device);
        assertThat(inhibitor.isInhibited()).isFalse();

        BalloonInhibitor.Inhibition first = inhibitor.inhibit();
        assertThat(inhibitor.count()).isEqualTo(1);
        assertThat(device.events).containsExactly("forbidden");

        inhibitor.inhibit(); // released below the seed's way, without the token
        assertThat(inhibitor.count()).isEqualTo(2);
        assertThat(device.events).containsExactly("forbidden");

        first.close();
        first.close(); // a token releases once
        assertThat(inhibitor.count()).isEqualTo(1);
        assertThat(inhibitor.isInhibited()).isTrue();
        assertThat(device.events).containsExactly("forbidden");

        inhibitor.release();
        assertThat(inhibitor.count()).isZero();
        assertThat(inhibitor.isInhibited()).isFalse();
        assertThat(device.events).containsExactly("forbidden", "allowed");

        assertThatThrownBy(inhibitor::release).isInstanceOf(IllegalStateException.class);
        assertThat(inhibitor.count()).isZero();
    }

    @Test
    void aDeviceAddedWhileInhibitedIsToldAtOnceAndReleasedWhenRemoved() {
        BalloonInhibitor inhibitor = Policies.newBalloonInhibitor();
        try (BalloonInhibitor.Inhibition hold = inhibitor.inhibit()) {
            RecordingDevice late = new RecordingDevice(), leaving = new RecordingDevice();
            inhibitor.addDevice(late);
            inhibitor.addDevice(leaving);
            assertThat(late.events).containsExactly("forbidden");
            inhibitor.removeDevice(leaving);
            assertThat(leaving.events).containsExactly("forbidden", "allowed");
            hold.close();
            assertThat(late.events).containsExactly("forbidden", "allowed");
            assertThat(leaving.events).hasSize(2);
        }
    }

    @Test
    void aFailingDeviceDoesNotStopTheOthers() {
        BalloonInhibitor inhibitor = Policies.newBalloonInhibitor();
        inhibitor.addDevice(new BalloonDevice() {
            @Override public void inflationForbidden() { throw new IllegalStateException("broken balloon"); }
            @Override public void inflationAllowed() { throw new IllegalStateException("broken balloon"); }
        });
        RecordingDevice good = new RecordingDevice();
        inhibitor.addDevice(good);
        inhibitor.inhibit().close();
        assertThat(good.events).containsExactly("forbidden", "allowed");
    }

    @Test
    void concurrentHoldsBalanceAndDevicesSeeStrictAlternation() throws InterruptedException {
        BalloonInhibitor inhibitor = Policies.newBalloonInhibitor();
        RecordingDevice device = new RecordingDevice();
        inhibitor.addDevice(device);
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
        for (int t = 0; t < 4; t++) {
            threads.add(new Thread(() -> {
                try {
                    start.await();
                    for (int i = 0; i < 20_000; i++) {
                        try (BalloonInhibitor.Inhibition h = inhibitor.inhibit()) {
                            if (!inhibitor.isInhibited()) throw new AssertionError("not inhibited while held");
                        }
                    }
                } catch (Throwable e) {
                    failures.add(e);
                }
            }));
        }
        threads.forEach(Thread::start);
        start.countDown();
        for (Thread t : threads) t.join();
        assertThat(failures).isEmpty();
        assertThat(inhibitor.count()).isZero();
        assertThat(device.events).isNotEmpty().hasSize(device.events.size() / 2 * 2);
        assertThat(device.events.get(device.events.size() - 1)).isEqualTo("allowed");
    }
}
