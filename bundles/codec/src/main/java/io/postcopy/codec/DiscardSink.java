package io.postcopy.codec;

import java.io.IOException;

/** Where a {@link DiscardBatcher} sends each finished {@code POSTCOPY_RAM_DISCARD} command. */
@FunctionalInterface
public interface DiscardSink {
    void send(Command.PostcopyRamDiscard command) throws IOException;
}
