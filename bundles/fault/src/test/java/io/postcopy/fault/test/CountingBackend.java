package io.postcopy.fault.test;

import io.postcopy.fault.PlacementBackend;
import io.postcopy.fault.PlacementContext;
import io.postcopy.ramblock.RamBlock;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A real backend under another name, counting its placements: shows which backend (or which instance of one)
 * placed pages while backends are swapped. Called by the placing threads; {@link #calls} read by the test.
 */
public final class CountingBackend implements PlacementBackend {
    private final PlacementBackend real;
    private final String name;
    /** place and placeZero calls so far. */
    public final AtomicLong calls = new AtomicLong();

    /** Under the real backend's own name. */
    public CountingBackend(PlacementBackend real) {
        this(real, real.name());
    }

    public CountingBackend(PlacementBackend real, String name) {
        this.real = real;
        this.name = name;
    }

    @Override public String name() { return name; }
    @Override public boolean supports(RamBlock b) { return real.supports(b); }
    @Override public String supportedKinds() { return real.supportedKinds(); }
    @Override public void prepare(PlacementContext c) { real.prepare(c); }
    @Override public void cleanup(PlacementContext c) { real.cleanup(c); }
    @Override public long place(PlacementContext c, long o, long s, long l) { calls.incrementAndGet(); return real.place(c, o, s, l); }
    @Override public long placeZero(PlacementContext c, long o, long l) { calls.incrementAndGet(); return real.placeZero(c, o, l); }
    @Override public void discard(PlacementContext c, long o, long l) { real.discard(c, o, l); }
}
