package io.postcopy.codec;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;

/** Builds streams with the encoder, for tests. */
final class Streams {
    private Streams() {
    }

    static final RamBlockInfo RAM = new RamBlockInfo(0, "pc.ram", 64 * 4096, 4096);
    static final RamBlockInfo ROM = new RamBlockInfo(1, "/rom@etc/acpi/tables", 4 * 4096, 4096);
    static final List<RamBlockInfo> BLOCKS = List.of(RAM, ROM);

    static byte[] encode(StreamEncoder.Body body) throws IOException {
        return StreamEncoder.encode(body);
    }

    static ByteBuffer page(long seed) {
        byte[] b = new byte[4096];
        new Random(seed).nextBytes(b);
        return ByteBuffer.wrap(b);
    }

    /** A package as QEMU builds it: LISTEN, two device sections, PING 3, RUN. */
    static byte[] qemuLikePackage() throws IOException {
        return encode(e -> {
            e.writeCommand(new Command.PostcopyListen());
            e.writeSectionStart(SectionType.FULL, 2, "timer", 0, 2);
            e.writeEos(); // any body bytes: 8 bytes of 0x..10
            e.writeFooter(2);
            e.writeSectionStart(SectionType.FULL, 5, "cpu", 0, 12);
            e.writeCommand(new Command.Ping(0x7e)); // body bytes that look like a command
            e.writeFooter(5);
            e.writeCommand(new Command.Ping(3));
            e.writeCommand(new Command.PostcopyRun());
        });
    }

    /** A complete postcopy stream in QEMU's order. */
    static byte[] sample() throws IOException {
        byte[] pkg = qemuLikePackage();
        return encode(e -> {
            e.writeHeader();
            e.writeConfiguration("pc-i440fx-7.2");
            e.writeCommand(new Command.OpenReturnPath());
            e.writeCommand(new Command.Ping(1));
            e.writeCommand(Command.PostcopyAdvise.of(4096, 4096));
            e.writeSectionStart(SectionType.START, 0, "ram", 0, 4);
            e.writeMemSize(BLOCKS, true, 4096);
            e.writeEos();
            e.writeFooter(0);
            e.writeSectionPart(SectionType.PART, 0);
            for (int i = 0; i < 8; i++) {
                e.writePage(RAM, i * 4096L, page(i), 0);
            }
            e.writeZero(ROM, 0, 0);
            e.writePage(ROM, 4096, page(100), 0);
            e.writeZero(RAM, 8 * 4096, 0);
            e.writeEos();
            e.writeFooter(0);
            e.writeCommand(new Command.PostcopyRamDiscard("pc.ram", List.of(new DiscardRange(0, 8192), new DiscardRange(4 * 4096, 4096))));
            e.writeCommand(new Command.Ping(2));
            e.writePackaged(ByteBuffer.wrap(pkg));
            e.writeSectionPart(SectionType.PART, 0);
            e.writePage(RAM, 0, page(200), 0);
            e.writePage(RAM, 4096, page(201), 0);
            e.writeEos();
            e.writeFooter(0);
            e.writeSectionPart(SectionType.END, 0);
            e.writeZero(RAM, 63 * 4096, 0);
            e.writeEos();
            e.writeFooter(0);
            e.writeEof();
        });
    }

    static Recorder decode(byte[] stream) throws IOException {
        return decode(stream, DecoderOptions.defaults());
    }

    static Recorder decode(byte[] stream, DecoderOptions o) throws IOException {
        Recorder r = new Recorder();
        StreamDecoder d = new StreamDecoder(r, o);
        ByteBuffer b = ByteBuffer.wrap(stream);
        d.decode(b);
        d.finish();
        return r;
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(String.format("%02x", x & 0xff));
        }
        return s.toString();
    }

    static byte[] unhex(String s) {
        s = s.replaceAll("[\\s_]", "");
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }
}
