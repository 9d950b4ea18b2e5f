package io.postcopy.migration.internal;

import java.io.IOException;

/**
 * The stream is well formed but asks for something this destination does not do (a page size it does not
 * have, a command it does not implement, a block that already exists). The migration fails with exactly this
 * message, not as a broken connection.
 */
public final class Refused extends IOException {
    private static final long serialVersionUID = 1L;

    public Refused(String message) {
        super(message);
    }
}
