package io.postcopy.codec;

import java.util.List;

/** A {@code QEMU_VM_COMMAND} record: immutable values, one per {@link CommandType}. */
public sealed interface Command {

    CommandType type();

    /** Payload length on the wire (the PACKAGED blob is not counted). */
    int payloadLength();

    record OpenReturnPath() implements Command {
        public CommandType type() { return CommandType.OPEN_RETURN_PATH; }
        public int payloadLength() { return 0; }
    }

    record Ping(int value) implements Command {
        public CommandType type() { return CommandType.PING; }
        public int payloadLength() { return 4; }
    }

    /**
     * @param withSizes false for the 0-byte form (postcopy not enabled on the source)
     */
    record PostcopyAdvise(boolean withSizes, long pageSizeSummary, long targetPageSize) implements Command {
        public PostcopyAdvise {
            if (!withSizes && (pageSizeSummary != 0 || targetPageSize != 0)) {
                throw new IllegalArgumentException("the 0-byte ADVISE carries no sizes");
            }
        }
        public static PostcopyAdvise of(long pageSizeSummary, long targetPageSize) {
            return new PostcopyAdvise(true, pageSizeSummary, targetPageSize);
        }
        public CommandType type() { return CommandType.POSTCOPY_ADVISE; }
        public int payloadLength() { return withSizes ? 16 : 0; }
    }

    record PostcopyListen() implements Command {
        public CommandType type() { return CommandType.POSTCOPY_LISTEN; }
        public int payloadLength() { return 0; }
    }

    record PostcopyRun() implements Command {
        public CommandType type() { return CommandType.POSTCOPY_RUN; }
        public int payloadLength() { return 0; }
    }

    /** Byte ranges (relative to the block) of pages the destination must drop; 1..12 ranges. */
    record PostcopyRamDiscard(String block, List<DiscardRange> ranges) implements Command {
        public PostcopyRamDiscard {
            if (block == null || block.isEmpty() || block.length() > 255) {
                throw new IllegalArgumentException("block name must have 1..255 characters");
            }
            ranges = List.copyOf(ranges);
            if (ranges.isEmpty() || ranges.size() > Wire.MAX_DISCARDS_PER_COMMAND) {
                throw new IllegalArgumentException("1.." + Wire.MAX_DISCARDS_PER_COMMAND + " ranges, not " + ranges.size());
            }
        }
        public CommandType type() { return CommandType.POSTCOPY_RAM_DISCARD; }
        public int payloadLength() { return 3 + block.length() + 16 * ranges.size(); }
    }

    /** Announces {@code length} package bytes that follow the command. */
    record Packaged(int length) implements Command {
        public CommandType type() { return CommandType.PACKAGED; }
        public int payloadLength() { return 4; }
    }

    record EnableColo() implements Command {
        public CommandType type() { return CommandType.ENABLE_COLO; }
        public int payloadLength() { return 0; }
    }

    record PostcopyResume() implements Command {
        public CommandType type() { return CommandType.POSTCOPY_RESUME; }
        public int payloadLength() { return 0; }
    }

    record RecvBitmap(String block) implements Command {
        public RecvBitmap {
            if (block == null || block.isEmpty() || block.length() > 255) {
                throw new IllegalArgumentException("block name must have 1..255 characters");
            }
        }
        public CommandType type() { return CommandType.RECV_BITMAP; }
        public int payloadLength() { return 1 + block.length(); }
    }

    /** QEMU 10.0+: the source stops its guest and switches over (no payload, nothing to answer). */
    record SwitchoverStart() implements Command {
        public CommandType type() { return CommandType.SWITCHOVER_START; }
        public int payloadLength() { return 0; }
    }

    /** Our source's migration id ({@link CommandType#PEER_ID}), 1..{@link Wire#PEER_ID_MAX} characters. */
    record PeerId(String id) implements Command {
        public PeerId {
            if (id == null || id.isEmpty() || id.length() > Wire.PEER_ID_MAX)
                throw new IllegalArgumentException("a peer id has 1.." + Wire.PEER_ID_MAX + " characters");
        }
        public CommandType type() { return CommandType.PEER_ID; }
        public int payloadLength() { return 1 + id.length(); }
    }

    /** Our source's channel secret ({@link CommandType#CHANNEL_TOKEN}): {@link Wire#CHANNEL_TOKEN_BYTES} bytes. */
    record ChannelToken(byte[] token) implements Command {
        public ChannelToken {
            if (token.length != Wire.CHANNEL_TOKEN_BYTES)
                throw new IllegalArgumentException("a channel token is " + Wire.CHANNEL_TOKEN_BYTES + " bytes, not " + token.length);
            token = token.clone();
        }

        @Override
        public byte[] token() {
            return token.clone();
        }

        public CommandType type() { return CommandType.CHANNEL_TOKEN; }
        public int payloadLength() { return Wire.CHANNEL_TOKEN_BYTES; }

        @Override
        public boolean equals(Object o) {
            return o instanceof ChannelToken t && java.util.Arrays.equals(token, t.token);
        }

        @Override
        public int hashCode() {
            return java.util.Arrays.hashCode(token);
        }

        @Override
        public String toString() {
            return "ChannelToken[" + token.length + " bytes]";   // a secret: never in a log
        }
    }
}
