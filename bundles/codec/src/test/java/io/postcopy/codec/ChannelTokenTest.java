package io.postcopy.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Our CHANNEL_TOKEN command: 0x5043 with exactly 32 bytes, round-tripped, never printed. */
class ChannelTokenTest {
    @Test
    void roundTripsAndKeepsItsSecretOutOfToString() throws Exception {
        byte[] token = new byte[Wire.CHANNEL_TOKEN_BYTES];
        for (int i = 0; i < token.length; i++) token[i] = (byte) (i * 7 + 1);
        byte[] stream = StreamEncoder.encode(e -> {
            e.writeHeader();
            e.writeCommand(new Command.ChannelToken(token));
            e.writeEof();
        });
        // header, then 08 5043 0020 and the token
        assertThat(stream[8]).isEqualTo((byte) 0x08);
        assertThat(ByteBuffer.wrap(stream, 9, 4).getShort()).isEqualTo((short) 0x5043);
        assertThat(ByteBuffer.wrap(stream, 11, 2).getShort()).isEqualTo((short) 32);
        List<Command> seen = new ArrayList<>();
        StreamDecoder d = new StreamDecoder(new StreamHandler() {
            @Override
            public void onCommand(Command c) {
                seen.add(c);
            }
        });
        assertThat(d.decode(ByteBuffer.wrap(stream))).isTrue();
        assertThat(seen).containsExactly(new Command.ChannelToken(token));
        assertThat(seen.get(0).toString()).isEqualTo("ChannelToken[32 bytes]");
        assertThatThrownBy(() -> new Command.ChannelToken(new byte[31])).isInstanceOf(IllegalArgumentException.class);
    }
}
