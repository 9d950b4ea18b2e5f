package io.postcopy.codec;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;

import static io.postcopy.codec.Streams.hex;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** QEMU's postcopy-preempt channel: bare RAM records of the main stream's blocks, ended by EOS. */
class PostcopyChannelTest {

    private static byte[] channel() throws IOException {
        return Streams.encode(e -> {
            e.writePage(Streams.RAM, 0x5000, Streams.page(5), 0);
            e.writePage(Streams.RAM, 0x9000, Streams.page(9), 0);   // CONTINUE: same block
            e.writeZero(Streams.ROM, 0x1000, 0);
            e.writePage(Streams.RAM, 0x3f000, Streams.page(63), 0);
            e.writeEos();
        });
    }

    private static Recorder decode(byte[] bytes, int piece) throws IOException {
        Recorder r = new Recorder();
        StreamDecoder d = StreamDecoder.forPostcopyChannel(r, DecoderOptions.defaults(), Streams.BLOCKS);
        ByteBuffer buf = ByteBuffer.allocateDirect(StreamDecoder.MIN_BUFFER_CAPACITY);
        boolean done = false;
        for (int i = 0; i < bytes.length && !done; i += piece) {
            buf.put(bytes, i, Math.min(piece, bytes.length - i));
            buf.flip();
            done = d.decode(buf);
            buf.compact();
        }
        if (!done) d.finish();
        assertThat(d.finished()).isTrue();
        return r;
    }

    @Test
    void decodesPagesAndZeroPagesUntilEos() throws IOException {
        for (int piece : new int[] {1, 7, 4096, 1 << 20}) {
            Recorder r = decode(channel(), piece);
            assertThat(r.events).containsExactly(
                    "page pc.ram 5000 " + Long.toHexString(Recorder.crc(Streams.page(5), 0, 4096)),
                    "page pc.ram 9000 " + Long.toHexString(Recorder.crc(Streams.page(9), 0, 4096)),
                    "zero /rom@etc/acpi/tables 1000 0",
                    "page pc.ram 3f000 " + Long.toHexString(Recorder.crc(Streams.page(63), 0, 4096)),
                    "eos");
        }
    }

    @Test
    void firstRecordMustNameItsBlock() throws IOException {
        byte[] b = Streams.encode(e -> {
            e.writePage(Streams.RAM, 0x5000, Streams.page(5), 0);
            e.writePage(Streams.RAM, 0x6000, Streams.page(6), 0);
        });
        // drop the first record: the second has CONTINUE and no block before it on this channel
        byte[] rest = java.util.Arrays.copyOfRange(b, 8 + 1 + 6 + 4096, b.length);
        assertThatThrownBy(() -> decode(rest, rest.length))
                .isInstanceOfSatisfying(CodecException.class, e -> {
                    assertThat(e.offset()).isZero();
                    assertThat(e.field()).isEqualTo("RAM flags");
                    assertThat(e.value()).isEqualTo("CONTINUE");
                });
    }

    @Test
    void pageOutsideItsBlockIsRefusedBeforeTheHandlerSeesIt() throws IOException {
        byte[] b = Streams.encode(e -> e.writePage(Streams.ROM, 4 * 4096, Streams.page(1), 0));
        Recorder r = new Recorder();
        StreamDecoder d = StreamDecoder.forPostcopyChannel(r, DecoderOptions.defaults(), Streams.BLOCKS);
        assertThatThrownBy(() -> d.decode(ByteBuffer.wrap(b)))
                .isInstanceOfSatisfying(CodecException.class, e -> assertThat(e.kind()).isEqualTo(CodecException.Kind.OUT_OF_BLOCK));
        assertThat(r.events).isEmpty();
    }

    @Test
    void memSizeCommandsAndTruncationAreMalformedHere() throws IOException {
        byte[] memSize = Streams.encode(e -> e.writeMemSize(Streams.BLOCKS, false, 4096));
        assertThatThrownBy(() -> decode(memSize, memSize.length))
                .isInstanceOfSatisfying(CodecException.class, e -> assertThat(e.field()).isEqualTo("RAM flags"));
        byte[] command = Streams.encode(e -> e.writeCommand(new Command.Ping(7)));
        assertThatThrownBy(() -> decode(command, command.length)).isInstanceOf(CodecException.class);
        byte[] whole = channel();
        byte[] cut = java.util.Arrays.copyOf(whole, whole.length - 8);   // no EOS
        assertThatThrownBy(() -> decode(cut, cut.length))
                .isInstanceOfSatisfying(CodecException.class, e -> {
                    assertThat(e.kind()).isEqualTo(CodecException.Kind.TRUNCATED);
                    assertThat(e.field()).isEqualTo("postcopy channel");
                    assertThat(e.offset()).isEqualTo(cut.length);
                });
        assertThat(hex(java.util.Arrays.copyOfRange(whole, whole.length - 8, whole.length))).isEqualTo("0000000000000010");
    }
}
