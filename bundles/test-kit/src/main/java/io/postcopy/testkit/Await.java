package io.postcopy.testkit;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * Bounded polling for a condition that another thread makes true: the one way tests wait for something they
 * cannot join or be told about. On timeout it fails with an {@link AssertionError} that names what it waited
 * for and how long. Called on the test's own thread (or any thread that may sleep); holds no state.
 *
 * <p>Polls first after 1 ms and backs off to {@link #DEFAULT_POLL}: fast conditions are seen at once, slow ones
 * cost little. Give a longer poll where evaluating the condition is itself costly (a shell command). A condition
 * may throw (a shell command that fails): that ends the wait, unchecked exceptions as they are, checked ones in
 * an {@link AssertionError} naming the wait.
 */
public final class Await {
    /** The longest pause between two evaluations, unless the caller gives its own. */
    public static final Duration DEFAULT_POLL = Duration.ofMillis(10);

    /** A condition to wait for. */
    @FunctionalInterface
    public interface Condition {
        boolean holds() throws Exception;
    }

    /** A value to look at until it is the one waited for. */
    @FunctionalInterface
    public interface Probe<T> {
        T get() throws Exception;
    }

    private Await() {}

    /** Waits until {@code condition} holds, at most {@code timeout}. */
    public static void until(String what, Duration timeout, Condition condition) {
        until(what, timeout, DEFAULT_POLL, condition);
    }

    /** As {@link #until(String, Duration, Condition)}, evaluating the condition at most every {@code poll}. */
    public static void until(String what, Duration timeout, Duration poll, Condition condition) {
        until(what, timeout, poll, () -> condition.holds(), Boolean::booleanValue);
    }

    /**
     * Waits until {@code accept} holds for a value of {@code value}, at most {@code timeout}, and returns that
     * value; the failure names the last value seen.
     */
    public static <T> T until(String what, Duration timeout, Probe<T> value, Predicate<? super T> accept) {
        return until(what, timeout, DEFAULT_POLL, value, accept);
    }

    /** As {@link #until(String, Duration, Probe, Predicate)}, evaluating at most every {@code poll}. */
    public static <T> T until(String what, Duration timeout, Duration poll, Probe<T> value, Predicate<? super T> accept) {
        long maxPause = Math.max(1, poll.toMillis());
        long start = System.nanoTime(), deadline = start + timeout.toNanos();
        long pause = Math.min(1, maxPause);
        while (true) {
            T v = probe(what, value);
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

    private static <T> T probe(String what, Probe<T> value) {
        try {
            return value.get();
        } catch (RuntimeException e) {
            throw e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted waiting for " + what, e);
        } catch (Exception e) {
            throw new AssertionError("failed waiting for " + what + ": " + e, e);
        }
    }

    /** "10 s", "250 ms". */
    static String human(Duration d) {
        long ms = d.toMillis();
        return ms % 1000 == 0 ? ms / 1000 + " s" : ms + " ms";
    }
}
