package io.postcopy.migration.internal.source;

import io.postcopy.migration.GuestControl;
import java.time.Duration;
import java.util.Optional;

/**
 * The guest's downtime: from asking the source's guest to pause to the destination's word that its guest can run
 * (the PONG to the PING after the package; in precopy, SHUT 0).
 *
 * <p>Threads: the sender pauses the guest and sends the package; the return-path reader ends the downtime; any thread
 * reads it.
 */
final class Downtime {
    private volatile long pausedAtNanos, downtimeNanos = -1, toPackageSentNanos = -1;
    private volatile boolean paused, packageSent;

    /** Downtime starts as the guest is asked to stop, as QEMU's does. */
    void pauseGuest(GuestControl guest) {
        pausedAtNanos = System.nanoTime();
        guest.pause();
        paused = true;
    }

    boolean guestPaused() {
        return paused;
    }

    /** The device state (and, in postcopy, RUN) is on the stream: the destination may run the guest from now on. */
    void packageSent() {
        packageSent = true;
    }

    /** The package and the PING after it left our buffer: the end of the downtime as QEMU reports it. */
    void packageFlushed() {
        if (toPackageSentNanos < 0) toPackageSentNanos = System.nanoTime() - pausedAtNanos;
    }

    boolean isPackageSent() {
        return packageSent;
    }

    /** The destination's guest can run: the first call after the package ends the downtime. */
    void end() {
        if (packageSent && downtimeNanos < 0) downtimeNanos = System.nanoTime() - pausedAtNanos;
    }

    /** Whether the destination said that its guest runs. */
    boolean ended() {
        return downtimeNanos >= 0;
    }

    Optional<Duration> get() {
        long d = downtimeNanos;
        return d < 0 ? Optional.empty() : Optional.of(Duration.ofNanos(d));
    }

    /**
     * {@link #packageFlushed}'s figure; a migration that ended in precopy has only the whole downtime. Never more than
     * the whole: the sender may lose its CPU between the last write and taking the time, while the PONG comes back.
     */
    Optional<Duration> toPackageSent() {
        long d = toPackageSentNanos, whole = downtimeNanos;
        if (d < 0) return get();
        return Optional.of(Duration.ofNanos(whole >= 0 ? Math.min(d, whole) : d));
    }
}
