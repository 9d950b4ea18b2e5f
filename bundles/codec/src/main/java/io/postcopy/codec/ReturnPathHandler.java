package io.postcopy.codec;

import java.io.IOException;

/** Receives return-path messages from a {@link ReturnPathDecoder}. */
@FunctionalInterface
public interface ReturnPathHandler {
    /**
     * @param offset stream offset of the message's type field
     */
    void onMessage(ReturnPathMessage message, long offset) throws IOException;
}
