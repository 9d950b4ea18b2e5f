package io.postcopy.benchmarks;

import io.postcopy.codec.Command;
import io.postcopy.codec.DiscardRange;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;

/** Streams built with the codec's encoder, shared by the benchmarks and the fuzz harness. */
final class Samples {
    private Samples() {
    }

    static final RamBlockInfo RAM = new RamBlockInfo(0, "pc.ram", 1L << 30, 4096);
    static final RamBlockInfo ROM = new RamBlockInfo(1, "/rom@etc/acpi/tables", 1 << 17, 4096);

    static byte[] encode(StreamEncoder.Body body) throws IOException {
        return StreamEncoder.encode(body);
    }

    static byte[] head() throws IOException {
        return encode(e -> e.writeHeader().writeConfiguration("pc-i440fx-7.2")
                .writeSectionStart(SectionType.START, 2, "ram", 0, 4).writeMemSize(List.of(RAM, ROM), true, 4096)
                .writeEos().writeFooter(2));
    }

    /** header, setup, one PART of {@code pages} PAGE (or ZERO) records in pc.ram, END, EOF. */
    static ByteBuffer pageStream(int pages, boolean zero) throws IOException {
        byte[] page = new byte[4096];
        new Random(1).nextBytes(page);
        ByteBuffer src = ByteBuffer.wrap(page);
        byte[] s = encode(e -> {
            e.writeHeader().writeSectionStart(SectionType.START, 2, "ram", 0, 4).writeMemSize(List.of(RAM, ROM), true, 4096)
                    .writeEos().writeFooter(2).writeSectionPart(SectionType.PART, 2);
            for (int i = 0; i < pages; i++) {
                if (zero) {
                    e.writeZero(RAM, i * 4096L, 0);
                } else {
                    e.writePage(RAM, i * 4096L, src, 0);
                }
            }
            e.writeEos().writeFooter(2).writeSectionPart(SectionType.END, 2).writeEos().writeFooter(2).writeEof();
        });
        return ByteBuffer.allocateDirect(s.length).put(s).flip();
    }

    /** A stream with every structure: commands, discards, a QEMU-like package, pages, zeros, CONTINUE. */
    static byte[] everything() throws IOException {
        byte[] pkg = encode(e -> {
            e.writeCommand(new Command.PostcopyListen());
            e.writeSectionStart(SectionType.FULL, 3, "timer", 0, 2).writeEos().writeFooter(3);
            e.writeSectionStart(SectionType.FULL, 4, "cpu", 0, 12).writeCommand(new Command.Ping(9)).writeFooter(4);
            e.writeCommand(new Command.Ping(3)).writeCommand(new Command.PostcopyRun());
        });
        Random rnd = new Random(3);
        byte[] page = new byte[4096];
        rnd.nextBytes(page);
        return encode(e -> {
            e.writeHeader().writeConfiguration("pc-i440fx-7.2");
            e.writeCommand(new Command.OpenReturnPath()).writeCommand(new Command.Ping(1))
                    .writeCommand(Command.PostcopyAdvise.of(4096, 4096));
            e.writeSectionStart(SectionType.START, 2, "ram", 0, 4).writeMemSize(List.of(RAM, ROM), true, 4096).writeEos().writeFooter(2);
            e.writeSectionPart(SectionType.PART, 2);
            for (int i = 0; i < 4; i++) {
                e.writePage(RAM, i * 4096L, ByteBuffer.wrap(page), 0);
                e.writeZero(ROM, i * 4096L, 0);
            }
            e.writeEos().writeFooter(2);
            e.writeCommand(new Command.PostcopyRamDiscard("pc.ram", List.of(new DiscardRange(0, 8192), new DiscardRange(1 << 20, 4096))));
            e.writeCommand(new Command.RecvBitmap("pc.ram"));
            e.writeCommand(new Command.Ping(2));
            e.writePackaged(ByteBuffer.wrap(pkg));
            e.writeSectionPart(SectionType.PART, 2).writeZero(RAM, 4096 * 9, 0).writePage(RAM, 0, ByteBuffer.wrap(page), 0)
                    .writeEos().writeFooter(2);
            e.writeSectionPart(SectionType.END, 2).writeEos().writeFooter(2).writeEof();
        });
    }
}
