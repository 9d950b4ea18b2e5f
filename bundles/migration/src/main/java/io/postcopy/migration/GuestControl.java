package io.postcopy.migration;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Stops and restarts whatever runs on the migrated memory (the vCPUs of a guest). The source pauses it at
 * the switch; the destination resumes it at {@code POSTCOPY_RUN} (or at the end of a precopy-only stream).
 * {@link #pause()} must return only once nothing writes the memory any more.
 */
@ConsumerType
public interface GuestControl {
    /** Nothing to pause or resume. */
    GuestControl NONE = of(() -> { }, () -> { });

    void pause();

    void resume();

    static GuestControl of(Runnable pause, Runnable resume) {
        return new GuestControl() {
            @Override
            public void pause() {
                pause.run();
            }

            @Override
            public void resume() {
                resume.run();
            }
        };
    }
}
