package io.postcopy.testkit;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * Bounded polling for a condition that another thread makes true: the one way tests wait for something they
 * cannot join or be told about. On timeout it fails with an {@link AssertionError} that names what it waited
 * for and how long. Called on the test's own thread (or any thread that may sleep); holds no state.
 *
 * <p>Polls first after 1 ms and backs off to {@link #DEFAULT_POLL}: fast conditions are seen at once, slow ones
 * cost little. Give a longer poll where evaluating the condition is itself costly (a shell command).
 */
public final class Await {
    /** The longest pause between two evaluations, unless the caller gives its own. */
    public static final Duration DEFAULT_POLL = Duration.ofMillis(10);

    private Await() {}

    /** Waits until {@code condition} holds, at most {@code timeout}. */
    public static void until(String what, Duration timeout, BooleanSupplier condition) {
        until(what, timeout, DEFAULT_POLL, condition);
    }

    /** As {@link #until(String, Duration, BooleanSupplier)}, evaluating the condition at most every {@code poll}. */
    public static void until(String what, Duration timeout, Duration poll, BooleanSupplier condition) {
        until(what, timeout, poll, () -> condition.getAsBoolean(), Boolean::booleanValue);
    }

    /**
     * Waits until {@code accept} holds for a value of {@code value}, at most {@code timeout}, and returns that
     * value; the failure names the last value seen.
     */
    public static <T> T until(String what, Duration timeout, Supplier<T> value, Predicate<? super T> accept) {
        return until(what, timeout, DEFAULT_POLL, value, accept);
    }

    /** As {@link #until(String, Duration, Supplier, Predicate)}, evaluating at most every {@code poll}. */
    public static <T> T until(String what, Duration timeout, Duration poll, Supplier<T> value, Predicate<? super T> accept) {
        long maxPause = Math.max(1, poll.toMillis());
        long start = System.nanoTime(), deadline = start + timeout.toNanos();
        long pause = Math.min(1, maxPause);
        while (true) {
            T v = value.get();
            if (accept.test(v)) return v;
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                boolean bool = v instanceof Boolean;
                throw new AssertionError("timed out after " + human(timeout) + " waiting for " + what
                        + (bool ? "" : " (last: " + v + ")"));
            }
            try {
                Thread.sleep(Math.min(pause, Math.max(1, TimeUnit.NANOSECONDS.toMillis(left))));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted after " + human(Duration.ofNanos(System.nanoTime() - start))
                        + " waiting for " + what, e);
            }
            pause = Math.min(2 * pause, maxPause);
        }
    }

    /** "10 s", "250 ms". */
    static String human(Duration d) {
        long ms = d.toMillis();
        return ms % 1000 == 0 ? ms / 1000 + " s" : ms + " ms";
    }
}
