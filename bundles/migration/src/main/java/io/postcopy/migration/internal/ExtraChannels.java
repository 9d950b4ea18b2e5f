package io.postcopy.migration.internal;

/**
 * What a listener knows about the connections it accepted, asked by each of them: QEMU opens extra
 * connections for some capabilities (multifd, postcopy-preempt) with no handshake tying them to their main
 * one, so they are matched by host, time and, when that is ambiguous, by the pages they carry.
 */
interface ExtraChannels {
    /**
     * {@code extra} does not start a migration stream; {@code seen}: its first 4 bytes as the codec shows them.
     * Returns the reason to fail it with, or {@code null} to keep its own.
     */
    String notAStream(Destination extra, String seen);

    /**
     * {@code extra} stayed silent for {@link Destination#EXTRA_SILENCE_MILLIS}, or was tied already: the
     * migration whose postcopy-preempt channel it is if that is unambiguous (one candidate), else {@code null}.
     */
    Destination postcopyChannelOf(Destination extra);

    /** How many live migrations {@code extra} could be the postcopy-preempt channel of. */
    int candidates(Destination extra);

    /**
     * The first record on {@code extra}, not tied yet, is page {@code offset} of block {@code block} (its wire
     * name): the migration that requested that page lately, else the only one with a block of that name, or
     * {@code null}.
     */
    Destination postcopyChannelByFirstPage(Destination extra, String block, long offset);

    /** {@code main} switches to postcopy (its first discard or package): tie its silent channel if unambiguous. */
    void atPostcopySwitch(Destination main);

    /** Whether a connection that could still become {@code main}'s postcopy channel is untied (not yet found to be a stream). */
    boolean untiedChannelFor(Destination main);

    /** {@code extra} was a postcopy-preempt channel that carried no page (its first record is EOS): it is no migration. */
    void forgetUnused(Destination extra);
}
