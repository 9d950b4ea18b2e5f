package io.postcopy.codec;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** encode then decode is the identity, for every record type. */
class RoundTripPropertiesTest {
    static final long BLOCK = 1L << 30;
    static final RamBlockInfo A = new RamBlockInfo(0, "pc.ram", BLOCK, 4096);
    static final RamBlockInfo B = new RamBlockInfo(1, "0000:00:02.0/vga.vram", 16 << 20, 4096);

    static Arbitrary<String> names() {
        return Arbitraries.strings().withCharRange((char) 0x20, (char) 0x7e).ofMinLength(1).ofMaxLength(255);
    }

    static Arbitrary<DiscardRange> range() {
        Arbitrary<Long> page = Arbitraries.longs().between(0, BLOCK / 4096 - 1);
        return Combinators.combine(page, Arbitraries.longs().between(1, 1024))
                .as((p, n) -> new DiscardRange(p * 4096, Math.min(n, BLOCK / 4096 - p) * 4096));
    }

    @Provide
    Arbitrary<Command> commands() {
        return Arbitraries.oneOf(
                Arbitraries.just(new Command.OpenReturnPath()),
                Arbitraries.integers().map(Command.Ping::new),
                Arbitraries.just(new Command.PostcopyAdvise(false, 0, 0)),
                Arbitraries.integers().between(12, 30).map(bits -> Command.PostcopyAdvise.of((1L << bits) | 4096, 4096)),
                Arbitraries.just(new Command.PostcopyListen()),
                Arbitraries.just(new Command.PostcopyRun()),
                range().list().ofMinSize(1).ofMaxSize(12).map(l -> new Command.PostcopyRamDiscard("pc.ram", l)),
                Arbitraries.just(new Command.EnableColo()),
                Arbitraries.just(new Command.PostcopyResume()),
                names().map(Command.RecvBitmap::new));
    }

    @Property(tries = 400)
    void commandsRoundTrip(@ForAll @net.jqwik.api.constraints.Size(max = 40) List<@net.jqwik.api.From("commands") Command> cmds) throws IOException {
        byte[] s = Streams.encode(e -> {
            e.writeHeader();
            e.writeSectionStart(SectionType.START, 3, "ram", 0, 4).writeMemSize(List.of(A, B), true, 4096).writeEos().writeFooter(3);
            for (Command c : cmds) {
                e.writeCommand(c);
            }
            e.writeSectionPart(SectionType.END, 3).writeEos().writeFooter(3).writeEof();
        });
        assertThat(Streams.decode(s).commands).isEqualTo(cmds);
    }

    @Provide
    Arbitrary<ReturnPathMessage> messages() {
        Arbitrary<Long> page = Arbitraries.longs().between(0, BLOCK / 4096 - 1).map(p -> p * 4096);
        return Arbitraries.oneOf(
                Arbitraries.integers().map(ReturnPathMessage.Pong::new),
                page.map(p -> new ReturnPathMessage.ReqPagesId("pc.ram", p, 4096)),
                page.map(p -> new ReturnPathMessage.ReqPagesId("0000:00:02.0/vga.vram", p % (16 << 20), 4096)),
                Arbitraries.bytes().array(byte[].class).ofMaxSize(64).map(b -> {
                    byte[] bm = new byte[(BLOCK / 4096 / 8 + 7) / 8 * 8 == 0 ? 8 : (int) ((BLOCK / 4096 / 8 + 7) / 8 * 8)];
                    System.arraycopy(b, 0, bm, 0, b.length);
                    return new ReturnPathMessage.RecvBitmap("pc.ram", ByteBuffer.wrap(bm));
                }),
                Arbitraries.just(new ReturnPathMessage.ResumeAck(1)),
                Arbitraries.just(new ReturnPathMessage.SwitchoverAck()));
    }

    @Property(tries = 300)
    void returnPathRoundTrips(@ForAll @net.jqwik.api.constraints.Size(max = 40) List<@net.jqwik.api.From("messages") ReturnPathMessage> msgs, @ForAll int shutStatus) throws IOException {
        List<ReturnPathMessage> all = new ArrayList<>(msgs);
        all.add(new ReturnPathMessage.Shut(shutStatus));
        int size = 0;
        for (ReturnPathMessage m : all) {
            size += ReturnPathEncoder.encodedLength(m);
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        ReturnPathEncoder enc = new ReturnPathEncoder();
        for (ReturnPathMessage m : all) {
            enc.write(m, b);
        }
        assertThat(b.hasRemaining()).isFalse();
        b.flip();
        List<ReturnPathMessage> got = new ArrayList<>();
        new ReturnPathDecoder((m, off) -> got.add(m), new BlockValidator(List.of(A, B)), 1 << 20).decode(b);
        assertThat(got).isEqualTo(all);
    }

    /** Page requests through writePageRequest come back as the same (block, start) sequence. */
    @Property(tries = 200)
    void pageRequestsKeepTheirBlocks(@ForAll List<@net.jqwik.api.constraints.IntRange(min = 0, max = 4095) Integer> pages,
                                     @ForAll List<Boolean> inA) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(pages.size() * 40 + 8);
        ReturnPathEncoder enc = new ReturnPathEncoder();
        List<String> sent = new ArrayList<>();
        for (int i = 0; i < pages.size(); i++) {
            String block = i < inA.size() && !inA.get(i) ? B.idstr() : A.idstr();
            enc.writePageRequest(block, pages.get(i) * 4096L, 4096, b);
            sent.add(block + "@" + pages.get(i) * 4096L);
        }
        b.flip();
        List<String> got = new ArrayList<>();
        String[] last = {null};
        new ReturnPathDecoder((m, off) -> {
            if (m instanceof ReturnPathMessage.ReqPagesId r) {
                last[0] = r.block();
                got.add(r.block() + "@" + r.start());
            } else if (m instanceof ReturnPathMessage.ReqPages r) {
                got.add(last[0] + "@" + r.start());
            }
        }, new BlockValidator(List.of(A, B)), 1 << 20).decode(b);
        assertThat(got).isEqualTo(sent);
    }

    record Rec(boolean zero, boolean inA, long page, int fill, long seed) {
    }

    @Provide
    Arbitrary<Rec> records() {
        return Combinators.combine(Arbitraries.of(true, false), Arbitraries.of(true, false),
                Arbitraries.longs().between(0, 4095), Arbitraries.integers().between(0, 255), Arbitraries.longs())
                .as(Rec::new);
    }

    /** A whole stream of RAM records over several sections and a package decodes to exactly what was written. */
    @Property(tries = 150)
    void ramStreamsRoundTrip(@ForAll @net.jqwik.api.constraints.Size(max = 80) List<@net.jqwik.api.From("records") Rec> recs, @ForAll @net.jqwik.api.constraints.Size(max = 40) List<@net.jqwik.api.From("commands") Command> cmds) throws IOException {
        byte[] pkg = Streams.qemuLikePackage();
        List<String> expected = new ArrayList<>();
        byte[] s = Streams.encode(e -> {
            e.writeHeader().writeConfiguration("pc-q35-7.2");
            e.writeSectionStart(SectionType.START, 7, "ram", 0, 4).writeMemSize(List.of(A, B), true, 4096).writeEos().writeFooter(7);
            int i = 0;
            for (Rec r : recs) {
                if (i++ % 17 == 0) {
                    if (i > 1) {
                        e.writeEos().writeFooter(7);
                    }
                    e.writeSectionPart(SectionType.PART, 7);
                }
                RamBlockInfo blk = r.inA() ? A : B;
                if (r.zero()) {
                    e.writeZero(blk, r.page() * 4096, r.fill());
                    expected.add("zero " + blk.idstr() + " " + Long.toHexString(r.page() * 4096) + " " + r.fill());
                } else {
                    ByteBuffer p = Streams.page(r.seed());
                    e.writePage(blk, r.page() * 4096, p, 0);
                    expected.add("page " + blk.idstr() + " " + Long.toHexString(r.page() * 4096) + " "
                            + Long.toHexString(Recorder.crc(p, 0, 4096)));
                }
            }
            if (!recs.isEmpty()) {
                e.writeEos().writeFooter(7);
            }
            for (Command c : cmds) {
                e.writeCommand(c);
            }
            e.writePackaged(ByteBuffer.wrap(pkg));
            e.writeSectionPart(SectionType.END, 7).writeEos().writeFooter(7).writeEof();
        });
        Recorder r = Streams.decode(s);
        assertThat(r.events).filteredOn(x -> x.startsWith("page ") || x.startsWith("zero ")).isEqualTo(expected);
        assertThat(r.commands.subList(0, cmds.size())).isEqualTo(cmds);
        assertThat(r.packages).singleElement().satisfies(p -> {
            assertThat(p.sections()).hasSize(2);
            assertThat(p.trailingCommands()).containsExactly(new Command.Ping(3), new Command.PostcopyRun());
        });
        assertThat(StreamDecoderTest.decodeInPieces(s, s.length, 3000)).isEqualTo(r.events);
    }
}
