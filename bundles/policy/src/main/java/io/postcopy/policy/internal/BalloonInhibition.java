package io.postcopy.policy.internal;

import io.postcopy.policy.BalloonDevice;
import io.postcopy.policy.BalloonInhibitor;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The inhibitor. Count changes and device calls happen under one lock, so every device sees forbidden and
 * allowed strictly alternating, in the order of the transitions.
 */
public final class BalloonInhibition implements BalloonInhibitor {
    private static final System.Logger LOG = System.getLogger(BalloonInhibition.class.getName());

    private final List<BalloonDevice> devices = new ArrayList<>();
    private int count;

    private final class Hold implements Inhibition {
        private final AtomicBoolean open = new AtomicBoolean(true);

        @Override
        public void close() {
            if (open.compareAndSet(true, false)) release();
        }

        @Override
        public String toString() {
            return "Inhibition[" + (open.get() ? "held" : "released") + "]";
        }
    }

    @Override
    public Inhibition inhibit() {
        synchronized (this) {
            if (count++ == 0) for (BalloonDevice d : devices) tell(d, true);
        }
        return new Hold();
    }

    @Override
    public synchronized void release() {
        if (count == 0) throw new IllegalStateException("balloon release without a matching inhibit");
        if (--count == 0) for (BalloonDevice d : devices) tell(d, false);
    }

    @Override
    public synchronized boolean isInhibited() {
        return count > 0;
    }

    @Override
    public synchronized int count() {
        return count;
    }

    @Override
    public synchronized void addDevice(BalloonDevice device) {
        devices.add(device);
        if (count > 0) tell(device, true);
    }

    @Override
    public synchronized void removeDevice(BalloonDevice device) {
        if (devices.remove(device) && count > 0) tell(device, false);
    }

    private static void tell(BalloonDevice d, boolean forbidden) {
        try {
            if (forbidden) d.inflationForbidden();
            else d.inflationAllowed();
        } catch (RuntimeException e) {
            // A failing device must neither block the others nor undo the inhibition.
            LOG.log(Level.WARNING, "balloon device " + d + " failed on " + (forbidden ? "inflationForbidden" : "inflationAllowed"), e);
        }
    }

    @Override
    public synchronized String toString() {
        return "BalloonInhibitor[count " + count + ", " + devices.size() + " devices]";
    }
}
