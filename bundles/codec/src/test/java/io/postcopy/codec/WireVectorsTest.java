package io.postcopy.codec;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import static io.postcopy.codec.Streams.hex;
import static io.postcopy.codec.Streams.unhex;
import static org.assertj.core.api.Assertions.assertThat;

/** Byte-exact vectors, written by hand from the layouts in DESIGN.md section 4 and docs/protocol.md. */
class WireVectorsTest {

    private static String enc(StreamEncoder.Body body) throws IOException {
        return hex(Streams.encode(body));
    }

    @Test
    void headerAndConfiguration() throws IOException {
        assertThat(enc(e -> e.writeHeader().writeConfiguration("pc-i440fx-7.2")))
                .isEqualTo("5145564d" + "00000003" + "07" + "0000000d" + hex("pc-i440fx-7.2".getBytes()));
    }

    @Test
    void sectionHeadersAndFooter() throws IOException {
        assertThat(enc(e -> e.writeSectionStart(SectionType.START, 2, "ram", 0, 4))).isEqualTo("01" + "00000002" + "03" + "72616d" + "00000000" + "00000004");
        assertThat(enc(e -> e.writeSectionStart(SectionType.FULL, 0x11, "cpu", 1, 12))).isEqualTo("04" + "00000011" + "03" + "637075" + "00000001" + "0000000c");
        assertThat(enc(e -> e.writeSectionPart(SectionType.PART, 2))).isEqualTo("02" + "00000002");
        assertThat(enc(e -> e.writeSectionPart(SectionType.END, 2))).isEqualTo("03" + "00000002");
        assertThat(enc(e -> e.writeFooter(2))).isEqualTo("7e" + "00000002");
        assertThat(enc(StreamEncoder::writeEof)).isEqualTo("00");
    }

    @Test
    void ramRecords() throws IOException {
        RamBlockInfo ram = new RamBlockInfo(0, "pc.ram", 0x8000000, 4096);
        RamBlockInfo huge = new RamBlockInfo(1, "mem1", 0x400000, 0x200000);
        // MEM_SIZE: total | 0x04, per block counted idstr + be64 used (+ be64 page size when not the host's)
        assertThat(enc(e -> e.writeMemSize(List.of(ram, huge), true, 4096))).isEqualTo(
                "0000000008400004" + "06" + hex("pc.ram".getBytes()) + "0000000008000000" + "04" + hex("mem1".getBytes())
                        + "0000000000400000" + "0000000000200000");
        assertThat(enc(e -> e.writeMemSize(List.of(ram, huge), false, 4096))).isEqualTo(
                "0000000008400004" + "06" + hex("pc.ram".getBytes()) + "0000000008000000" + "04" + hex("mem1".getBytes())
                        + "0000000000400000");
        ByteBuffer page = Streams.page(1);
        // first PAGE names the block; the next one in the same block is CONTINUE (0x20)
        String pageHex = hex(page.array());
        assertThat(enc(e -> e.writePage(ram, 0x1000, page, 0).writePage(ram, 0x2000, page, 0))).isEqualTo(
                "0000000000001008" + "06" + hex("pc.ram".getBytes()) + pageHex + "0000000000002028" + pageHex);
        assertThat(enc(e -> e.writeZero(ram, 0x7fff000, 0).writeZero(ram, 0, 0))).isEqualTo(
                "0000000007fff002" + "06" + hex("pc.ram".getBytes()) + "00" + "0000000000000022" + "00");
        assertThat(enc(StreamEncoder::writeEos)).isEqualTo("0000000000000010");
    }

    @Test
    void commands() throws IOException {
        assertThat(enc(e -> e.writeCommand(new Command.OpenReturnPath()))).isEqualTo("08" + "0001" + "0000");
        assertThat(enc(e -> e.writeCommand(new Command.Ping(0x01020304)))).isEqualTo("08" + "0002" + "0004" + "01020304");
        assertThat(enc(e -> e.writeCommand(Command.PostcopyAdvise.of(0x201000, 0x1000))))
                .isEqualTo("08" + "0003" + "0010" + "0000000000201000" + "0000000000001000");
        assertThat(enc(e -> e.writeCommand(new Command.PostcopyAdvise(false, 0, 0)))).isEqualTo("08" + "0003" + "0000");
        assertThat(enc(e -> e.writeCommand(new Command.PostcopyListen()))).isEqualTo("08" + "0004" + "0000");
        assertThat(enc(e -> e.writeCommand(new Command.PostcopyRun()))).isEqualTo("08" + "0005" + "0000");
        assertThat(enc(e -> e.writeCommand(new Command.PostcopyRamDiscard("pc.ram",
                List.of(new DiscardRange(0x1000, 0x2000), new DiscardRange(0x10000, 0x1000))))))
                .isEqualTo("08" + "0006" + "0029" + "00" + "06" + hex("pc.ram".getBytes()) + "00"
                        + "0000000000001000" + "0000000000002000" + "0000000000010000" + "0000000000001000");
        assertThat(enc(e -> e.writePackaged(ByteBuffer.wrap(unhex("0800040000")))))
                .isEqualTo("08" + "0007" + "0004" + "00000005" + "0800040000");
        assertThat(enc(e -> e.writeCommand(new Command.EnableColo()))).isEqualTo("08" + "0008" + "0000");
        assertThat(enc(e -> e.writeCommand(new Command.PostcopyResume()))).isEqualTo("08" + "0009" + "0000");
        assertThat(enc(e -> e.writeCommand(new Command.RecvBitmap("pc.ram")))).isEqualTo("08" + "000a" + "0007" + "06" + hex("pc.ram".getBytes()));
        assertThat(enc(e -> e.writeCommand(new Command.SwitchoverStart()))).isEqualTo("08" + "000b" + "0000");
    }

    @Test
    void commandsDecodeFromTheVectors() throws IOException {
        String head = "5145564d00000003";
        String memSize = "01000000000372616d0000000000000004" + "0000000000020004" + "06" + hex("pc.ram".getBytes())
                + "0000000000020000" + "0000000000000010" + "7e00000000";
        String cmds = "0800010000" + "080002000401020304" + "0800030010" + "0000000000001000" + "0000000000001000"
                + "0800040000" + "0800050000" + "08000600290006" + hex("pc.ram".getBytes()) + "00"
                + "0000000000001000" + "0000000000002000" + "0000000000010000" + "0000000000001000"
                + "0800080000" + "0800090000" + "08000a000706" + hex("pc.ram".getBytes()) + "08000b0000" + "0300000000" + "0000000000000010" + "7e00000000" + "00";
        Recorder r = Streams.decode(unhex(head + memSize + cmds));
        assertThat(r.commands).containsExactly(new Command.OpenReturnPath(), new Command.Ping(0x01020304),
                Command.PostcopyAdvise.of(0x1000, 0x1000), new Command.PostcopyListen(), new Command.PostcopyRun(),
                new Command.PostcopyRamDiscard("pc.ram", List.of(new DiscardRange(0x1000, 0x2000), new DiscardRange(0x10000, 0x1000))),
                new Command.EnableColo(), new Command.PostcopyResume(), new Command.RecvBitmap("pc.ram"),
                new Command.SwitchoverStart());
        assertThat(r.events).last().isEqualTo("eof");
    }

    @Test
    void returnPathMessages() throws IOException {
        ReturnPathEncoder e = new ReturnPathEncoder();
        ByteBuffer b = ByteBuffer.allocate(256);
        e.write(new ReturnPathMessage.Pong(3), b);
        assertThat(e.writePageRequest("pc.ram", 0x3000, 4096, b)).isEqualTo(ReturnPathType.REQ_PAGES_ID);
        assertThat(e.writePageRequest("pc.ram", 0x5000, 4096, b)).isEqualTo(ReturnPathType.REQ_PAGES);
        e.write(new ReturnPathMessage.RecvBitmap("pc.ram", ByteBuffer.wrap(unhex("0102030405060708"))), b);
        e.write(new ReturnPathMessage.ResumeAck(1), b);
        e.write(new ReturnPathMessage.SwitchoverAck(), b);
        e.write(new ReturnPathMessage.Shut(0), b);
        b.flip();
        byte[] bytes = new byte[b.remaining()];
        b.duplicate().get(bytes);
        String expected = "0002000400000003"
                + "00030013" + "0000000000003000" + "00001000" + "06" + hex("pc.ram".getBytes())
                + "0004000c" + "0000000000005000" + "00001000"
                + "00050007" + "06" + hex("pc.ram".getBytes()) + "0000000000000008" + "0102030405060708" + "0123456789abcdef"
                + "0006000400000001" + "00070000" + "0001000400000000";
        assertThat(hex(bytes)).isEqualTo(expected);

        List<ReturnPathMessage> got = new ArrayList<>();
        new ReturnPathDecoder((m, off) -> got.add(m)).decode(ByteBuffer.wrap(unhex(expected)));
        assertThat(got).containsExactly(new ReturnPathMessage.Pong(3),
                new ReturnPathMessage.ReqPagesId("pc.ram", 0x3000, 4096), new ReturnPathMessage.ReqPages(0x5000, 4096),
                new ReturnPathMessage.RecvBitmap("pc.ram", ByteBuffer.wrap(unhex("0102030405060708"))),
                new ReturnPathMessage.ResumeAck(1), new ReturnPathMessage.SwitchoverAck(), new ReturnPathMessage.Shut(0));
    }
}
