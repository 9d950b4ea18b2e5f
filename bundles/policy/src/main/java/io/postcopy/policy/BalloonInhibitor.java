package io.postcopy.policy;

import org.osgi.annotation.versioning.ProviderType;

/**
 * Reference-counted inhibition of memory ballooning: the seed's {@code qemu_balloon_inhibit(true/false)}.
 * Devices are told {@link BalloonDevice#inflationForbidden()} when the count goes from 0 to 1 and
 * {@link BalloonDevice#inflationAllowed()} when it returns to 0. Thread-safe.
 */
@ProviderType
public interface BalloonInhibitor {
    /** One hold on the inhibition; closing it releases that hold, once. */
    interface Inhibition extends AutoCloseable {
        /** Releases this hold; later calls do nothing. */
        @Override
        void close();
    }

    /** Adds a hold and returns it as a token (try-with-resources). */
    Inhibition inhibit();

    /**
     * Releases one hold taken by {@link #inhibit()} without its token, as the seed does.
     *
     * @throws IllegalStateException when nothing is inhibited
     */
    void release();

    boolean isInhibited();

    /** The number of holds. */
    int count();

    /** Adds a device; while inhibited it is told {@link BalloonDevice#inflationForbidden()} at once. */
    void addDevice(BalloonDevice device);

    /**
     * Removes a device; while inhibited it is told {@link BalloonDevice#inflationAllowed()}, so that no device
     * stays forbidden by an inhibitor that will no longer speak to it.
     */
    void removeDevice(BalloonDevice device);
}
