package io.postcopy.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Groundwork for postcopy recovery (issue 12): a main stream goes on over a new connection with no header; its
 * block list and open RAM section come from the first connection. Commands, PART/END of that section and EOF
 * decode as on the first connection; a section that was never opened is refused.
 */
class ResumedStreamTest {
    static final RamBlockInfo RAM = new RamBlockInfo(0, "pc.ram", 1 << 20, 4096);

    @Test
    void aStreamCutInItsRamSectionGoesOnOverANewConnection() throws Exception {
        // the first connection: setup and a few pages, then cut in the middle of the RAM section's PART
        List<String> first = new ArrayList<>();
        byte[] start = StreamEncoder.encode(e -> {
            e.writeHeader().writeConfiguration("pc");
            e.writeCommand(new Command.OpenReturnPath());
            e.writeSectionStart(SectionType.START, 2, "ram", 0, 4);
            e.writeMemSize(List.of(RAM), true, 4096);
            e.writeEos().writeFooter(2);
            e.writeSectionPart(SectionType.PART, 2);
            e.writePage(RAM, 0, ByteBuffer.allocate(4096), 0);
        });
        StreamDecoder d1 = new StreamDecoder(recorder(first));
        d1.decode(ByteBuffer.wrap(start));
        SectionHeader ram = d1.ramSection();
        assertThat(ram).isEqualTo(new SectionHeader(SectionType.START, 2, "ram", 0, 4));

        // the resumed connection: RECV_BITMAP, POSTCOPY_RESUME, a new PART with a page, END, EOF
        List<String> second = new ArrayList<>();
        byte[] resumed = StreamEncoder.encode(e -> {
            e.writeCommand(new Command.RecvBitmap("pc.ram"));
            e.writeCommand(new Command.PostcopyResume());
            e.writeSectionPart(SectionType.PART, 2);
            e.writePage(RAM, 4096, ByteBuffer.allocate(4096), 0);
            e.writeEos().writeFooter(2);
            e.writeSectionPart(SectionType.END, 2);
            e.writeEos().writeFooter(2);
            e.writeEof();
        });
        StreamDecoder d2 = StreamDecoder.forResumedStream(recorder(second), DecoderOptions.defaults(), d1.blocks(), ram);
        assertThat(d2.decode(ByteBuffer.wrap(resumed))).isTrue();
        assertThat(second).containsExactly("RECV_BITMAP", "POSTCOPY_RESUME", "page pc.ram 0x1000", "EOF");
    }

    @Test
    void aSectionTheFirstConnectionNeverOpenedIsRefused() throws Exception {
        byte[] resumed = StreamEncoder.encode(e -> e.writeSectionPart(SectionType.PART, 7));
        StreamDecoder d = StreamDecoder.forResumedStream(recorder(new ArrayList<>()), DecoderOptions.defaults(), List.of(RAM),
                new SectionHeader(SectionType.START, 2, "ram", 0, 4));
        assertThatThrownBy(() -> d.decode(ByteBuffer.wrap(resumed))).isInstanceOf(CodecException.class)
                .hasMessageContaining("PART section id");
        assertThatThrownBy(() -> StreamDecoder.forResumedStream(recorder(new ArrayList<>()), DecoderOptions.defaults(), List.of(),
                new SectionHeader(SectionType.START, 2, "ram", 0, 4))).isInstanceOf(IllegalArgumentException.class);
    }

    static StreamHandler recorder(List<String> seen) {
        return new StreamHandler() {
            @Override
            public void onCommand(Command c) {
                seen.add(c.type().name());
            }

            @Override
            public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) {
                seen.add("page " + block.idstr() + " 0x" + Long.toHexString(offset));
            }

            @Override
            public void onEof() {
                seen.add("EOF");
            }
        };
    }
}
