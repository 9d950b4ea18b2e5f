package io.postcopy.policy;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A memory balloon, told when it must not inflate: a balloon taking pages away during postcopy would
 * make them fault and be fetched again from the source. Register one as an OSGi service (whiteboard)
 * or add it to a {@link BalloonInhibitor} directly. Calls are serialized and must return promptly.
 */
@ConsumerType
public interface BalloonDevice {
    /** From now on the balloon must not take pages from the guest. */
    void inflationForbidden();

    /** The balloon may inflate again. */
    void inflationAllowed();
}
