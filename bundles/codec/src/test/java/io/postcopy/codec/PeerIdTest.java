package io.postcopy.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Our PEER_ID: 0x5049 on the main stream (u8 length, id) and the same number on the return path. */
class PeerIdTest {
    @Test
    void theCommandRoundTrips() throws Exception {
        byte[] stream = StreamEncoder.encode(e -> {
            e.writeHeader();
            e.writeCommand(new Command.PeerId("out-12"));
            e.writeEof();
        });
        // header, then 08 5049 0007 06 "out-12"
        assertThat(stream[8]).isEqualTo((byte) 0x08);
        assertThat(ByteBuffer.wrap(stream, 9, 2).getShort()).isEqualTo((short) 0x5049);
        assertThat(ByteBuffer.wrap(stream, 11, 2).getShort()).isEqualTo((short) 7);
        assertThat(stream[13]).isEqualTo((byte) 6);
        List<Command> seen = new ArrayList<>();
        StreamDecoder d = new StreamDecoder(new StreamHandler() {
            @Override
            public void onCommand(Command c) {
                seen.add(c);
            }
        });
        assertThat(d.decode(ByteBuffer.wrap(stream))).isTrue();
        assertThat(seen).containsExactly(new Command.PeerId("out-12"));
        assertThatThrownBy(() -> new Command.PeerId("x".repeat(Wire.PEER_ID_MAX + 1))).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void theAnswerRoundTripsAndAMalformedOneIsRefused() throws Exception {
        ByteBuffer b = ByteBuffer.allocate(64);
        new ReturnPathEncoder().write(new ReturnPathMessage.PeerId("in-5"), b);
        assertThat(b.position()).isEqualTo(ReturnPathEncoder.encodedLength(new ReturnPathMessage.PeerId("in-5")));
        b.flip();
        List<ReturnPathMessage> got = new ArrayList<>();
        new ReturnPathDecoder((m, off) -> got.add(m)).decode(b);
        assertThat(got).containsExactly(new ReturnPathMessage.PeerId("in-5"));

        // the length byte must match the message length, and the id be printable
        ByteBuffer bad = ByteBuffer.allocate(16).putShort((short) 0x5049).putShort((short) 5).put((byte) 5)
                .put(new byte[] {'i', 'n', '-', 5}).flip();
        assertThatThrownBy(() -> new ReturnPathDecoder((m, off) -> { }).decode(bad)).isInstanceOf(CodecException.class)
                .hasMessageContaining("PEER_ID length");
        ByteBuffer ctl = ByteBuffer.allocate(16).putShort((short) 0x5049).putShort((short) 3).put((byte) 2)
                .put(new byte[] {'i', 7}).flip();
        assertThatThrownBy(() -> new ReturnPathDecoder((m, off) -> { }).decode(ctl)).isInstanceOf(CodecException.class)
                .hasMessageContaining("printable ASCII");
    }
}
