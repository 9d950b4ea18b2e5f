package io.postcopy.policy;

import io.postcopy.uffd.UffdException;

/**
 * What a policy step did: {@code changed} when it made a kernel call that succeeded, {@code error} when the
 * call failed. Policy steps report failures instead of throwing because the seed treats them as not fatal.
 */
public record PolicyOutcome(boolean changed, UffdException error) {
    /** Nothing to do under the configuration. */
    public static final PolicyOutcome UNCHANGED = new PolicyOutcome(false, null);
    /** The kernel call was made and succeeded. */
    public static final PolicyOutcome CHANGED = new PolicyOutcome(true, null);

    public static PolicyOutcome failed(UffdException error) {
        return new PolicyOutcome(false, error);
    }

    public boolean ok() {
        return error == null;
    }
}
