package io.postcopy.migration;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Stops and restarts whatever runs on the migrated memory (the vCPUs of a guest). The source pauses it at
 * the switch; the destination resumes it at {@code POSTCOPY_RUN} (or at the end of a precopy-only stream).
 * {@link #pause()} must return only once nothing writes the memory any more.
 *
 * <p><b>On the destination, after RUN</b>, a vCPU may be blocked on a page that has not arrived. If the
 * migration fails or is cancelled, the destination first calls {@link #requestPause()}, then lets such vCPUs
 * go (unregistering the memory from userfaultfd wakes them, into zero pages that never arrived), then calls
 * {@link #pause()}. A guest whose vCPUs can block on its memory must implement {@code requestPause} so that a
 * vCPU woken after it stops before it acts on anything it read.
 */
@ConsumerType
public interface GuestControl {
    /** Nothing to pause or resume. */
    GuestControl NONE = of(() -> { }, () -> { });

    /** Stops every vCPU; returns once nothing reads or writes the memory any more (see the class comment). */
    void pause();

    /**
     * Restarts every vCPU. On the destination it is called at RUN from a thread of the migration's own, which woke
     * as an urgent thread and returned to ordinary scheduling before this call (threads started here inherit that);
     * the guest's downtime ends when its vCPUs run, so return promptly.
     */
    void resume();

    /**
     * Asks every vCPU to stop and returns at once, without waiting for a vCPU blocked on a missing page; such a
     * vCPU, once woken, must stop before it uses what it read. The default does nothing: right for a guest
     * whose vCPUs never block on its memory (none, or one that is only paused and resumed).
     */
    default void requestPause() {}

    static GuestControl of(Runnable pause, Runnable resume) {
        return of(() -> { }, pause, resume);
    }

    /** With {@link #requestPause()}, for a guest whose vCPUs may block on missing pages. */
    static GuestControl of(Runnable requestPause, Runnable pause, Runnable resume) {
        return new GuestControl() {
            @Override
            public void pause() {
                pause.run();
            }

            @Override
            public void resume() {
                resume.run();
            }

            @Override
            public void requestPause() {
                requestPause.run();
            }
        };
    }
}
