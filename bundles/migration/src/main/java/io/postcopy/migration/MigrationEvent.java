package io.postcopy.migration;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A migration entered a state: what {@link MigrationListener}s get, and what the migration bundle posts to OSGi Event
 * Admin on the topic {@link #topic()} ({@code io/postcopy/migration/COMPLETED}, ...) with {@link #properties()}.
 * Events of one service come in the order the states were entered, the first with {@code previous} null (the
 * migration was created, in SETUP). The figures are read when the event is delivered: final for a final state.
 *
 * @param id          {@code out-N} or {@code in-N}
 * @param direction   {@code outgoing} (this host is the source) or {@code incoming}
 * @param peer        the other end, {@code host:port}
 * @param previous    the state before, or null for the first event
 * @param state       the state entered
 * @param reason      why (a failure, a pause's cause), or null
 * @param blocks      the RAM blocks migrated (an incoming migration's once its block list arrived)
 * @param bytes       stream bytes so far
 * @param totalPages  pages to migrate
 * @param remainingPages pages not yet sent (outgoing) or not yet here (incoming)
 * @param throughput  bytes per second over the whole migration so far
 * @param timestampMillis when the state was entered (epoch milliseconds)
 * @since 2.0
 */
public record MigrationEvent(String id, String direction, String peer, MigrationState previous, MigrationState state,
                             String reason, List<String> blocks, long bytes, long totalPages, long remainingPages,
                             double throughput, long timestampMillis) {
    /** Topics are this prefix and the state's name. */
    public static final String TOPIC_PREFIX = "io/postcopy/migration/";
    /** Every migration event: subscribe with this in {@code event.topics}. */
    public static final String TOPIC_ALL = TOPIC_PREFIX + "*";

    public static final String ID = "migration.id";
    public static final String DIRECTION = "migration.direction";
    public static final String PEER = "migration.peer";
    public static final String STATE = "migration.state";
    /** Absent on a migration's first event. */
    public static final String PREVIOUS = "migration.previous";
    /** Absent when there is none. */
    public static final String REASON = "migration.reason";
    /** A {@code String[]}. */
    public static final String BLOCKS = "migration.blocks";
    public static final String BYTES = "migration.bytes";
    public static final String TOTAL_PAGES = "migration.pages.total";
    public static final String REMAINING_PAGES = "migration.pages.remaining";
    /** Bytes per second, a {@code Double}. */
    public static final String THROUGHPUT = "migration.throughput";
    /** As Event Admin's {@code EventConstants.TIMESTAMP}. */
    public static final String TIMESTAMP = "timestamp";

    public MigrationEvent {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(state, "state");
        blocks = List.copyOf(blocks);
    }

    /** {@code io/postcopy/migration/} and the state's name. */
    public String topic() {
        return TOPIC_PREFIX + state.name();
    }

    /** The event's properties as Event Admin and JMX notifications carry them (types from java.lang only). */
    public Map<String, Object> properties() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put(ID, id);
        p.put(DIRECTION, direction);
        p.put(PEER, peer);
        p.put(STATE, state.name());
        if (previous != null) p.put(PREVIOUS, previous.name());
        if (reason != null) p.put(REASON, reason);
        p.put(BLOCKS, blocks.toArray(new String[0]));
        p.put(BYTES, bytes);
        p.put(TOTAL_PAGES, totalPages);
        p.put(REMAINING_PAGES, remainingPages);
        p.put(THROUGHPUT, throughput);
        p.put(TIMESTAMP, timestampMillis);
        return p;
    }
}
