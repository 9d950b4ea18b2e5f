package io.postcopy.codec;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.List;
import java.util.Random;

import static io.postcopy.codec.Streams.hex;
import static io.postcopy.codec.Streams.unhex;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class StreamDecoderTest {
    static byte[] sample;
    static List<String> whole;

    @BeforeAll
    static void build() throws IOException {
        sample = Streams.sample();
        whole = Streams.decode(sample).events;
    }

    @Test
    void decodesTheSampleInOrder() throws IOException {
        Recorder r = Streams.decode(sample);
        assertThat(r.events.get(0)).isEqualTo("header 3");
        assertThat(r.events.get(1)).isEqualTo("config pc-i440fx-7.2");
        assertThat(r.blocks).containsExactly(Streams.RAM, Streams.ROM);
        assertThat(r.pages).isEqualTo(11);
        assertThat(r.zeros).isEqualTo(3);
        assertThat(r.events).contains("page pc.ram 3000 " + Long.toHexString(Recorder.crc(Streams.page(3), 0, 4096)),
                "zero /rom@etc/acpi/tables 0 0", "zero pc.ram 3f000 0");
        assertThat(r.commands).extracting(Command::type).containsExactly(CommandType.OPEN_RETURN_PATH, CommandType.PING,
                CommandType.POSTCOPY_ADVISE, CommandType.POSTCOPY_RAM_DISCARD, CommandType.PING, CommandType.PACKAGED);
        PackageContents p = r.packages.get(0);
        assertThat(p.leadingCommands()).containsExactly(new Command.PostcopyListen());
        assertThat(p.trailingCommands()).containsExactly(new Command.Ping(3), new Command.PostcopyRun());
        assertThat(p.sections()).extracting(DeviceSection::idstr, DeviceSection::sectionId, DeviceSection::versionId,
                DeviceSection::length, DeviceSection::delimited)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("timer", 2, 2, 14 + 5 + 8 + 5, true),
                        org.assertj.core.groups.Tuple.tuple("cpu", 5, 12, 14 + 3 + 9 + 5, true));
        assertThat(r.events).last().isEqualTo("eof");
    }

    /** Feeds the stream in random pieces through a small working buffer, as a socket would deliver it. */
    static List<String> decodeInPieces(byte[] stream, long seed, int maxPiece) throws IOException {
        Random rnd = new Random(seed);
        Recorder r = new Recorder();
        StreamDecoder d = new StreamDecoder(r);
        ByteBuffer work = ByteBuffer.allocate(StreamDecoder.MIN_BUFFER_CAPACITY);
        int pos = 0;
        while (pos < stream.length) {
            int n = Math.min(1 + rnd.nextInt(maxPiece), stream.length - pos);
            n = Math.min(n, work.remaining());
            work.put(stream, pos, n);
            pos += n;
            work.flip();
            d.decode(work);
            work.compact();
        }
        d.finish();
        assertThat(d.offset()).isEqualTo(stream.length);
        return r.events;
    }

    @Test
    void splitReadsGiveTheSameEvents() throws IOException {
        for (int seed = 0; seed < 20; seed++) {
            assertThat(decodeInPieces(sample, seed, 1 + seed * 500)).isEqualTo(whole);
        }
        assertThat(decodeInPieces(sample, 99, 1)).isEqualTo(whole);
    }

    @Test
    void everySplitPointOfTheSmallPrefixWorks() throws IOException {
        // the non-page part: header .. setup section .. first commands
        byte[] head = Streams.encode(e -> {
            e.writeHeader().writeConfiguration("pc").writeCommand(Command.PostcopyAdvise.of(4096, 4096));
            e.writeSectionStart(SectionType.START, 0, "ram", 0, 4).writeMemSize(Streams.BLOCKS, true, 4096).writeEos().writeFooter(0);
            e.writeCommand(new Command.PostcopyRamDiscard("pc.ram", List.of(new DiscardRange(0, 4096))));
            e.writeSectionPart(SectionType.END, 0).writeZero(Streams.ROM, 4096, 0).writeEos().writeFooter(0).writeEof();
        });
        List<String> expected = Streams.decode(head).events;
        for (int split = 0; split <= head.length; split++) {
            Recorder r = new Recorder();
            StreamDecoder d = new StreamDecoder(r);
            ByteBuffer work = ByteBuffer.allocate(head.length);
            work.put(head, 0, split).flip();
            d.decode(work);
            work.compact().put(head, split, head.length - split).flip();
            assertThat(d.decode(work)).isTrue();
            assertThat(r.events).as("split at %d", split).isEqualTo(expected);
        }
    }

    @Test
    void channelWithTinyReads() throws IOException {
        Recorder r = new Recorder();
        ByteBuffer src = ByteBuffer.wrap(sample);
        Random rnd = new Random(7);
        ReadableByteChannel ch = new ReadableByteChannel() {
            public int read(ByteBuffer dst) {
                if (!src.hasRemaining()) {
                    return -1;
                }
                int n = Math.min(Math.min(dst.remaining(), src.remaining()), 1 + rnd.nextInt(3000));
                dst.put(src.duplicate().limit(src.position() + n));
                src.position(src.position() + n);
                return n;
            }
            public boolean isOpen() { return true; }
            public void close() { }
        };
        new StreamDecoder(r).decode(ch);
        assertThat(r.events).isEqualTo(whole);
    }

    @Test
    void truncatedChannelIsTruncatedError() {
        byte[] cut = java.util.Arrays.copyOf(sample, sample.length - 3);
        assertThatThrownBy(() -> new StreamDecoder(new Recorder()).decode(java.nio.channels.Channels.newChannel(
                new java.io.ByteArrayInputStream(cut))))
                .isInstanceOfSatisfying(CodecException.class, e -> assertThat(e.kind()).isEqualTo(CodecException.Kind.TRUNCATED));
    }

    @Test
    void pageIsHandedOutInPlaceWithoutCopy() throws IOException {
        ByteBuffer in = ByteBuffer.allocateDirect(sample.length).put(sample).flip();
        int[] seen = new int[1];
        new StreamDecoder(new StreamHandler() {
            @Override
            public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) {
                assertThat(src).isSameAs(in);
                assertThat(src.get(position)).isEqualTo(sample[position]);
                assertThat(PageBuffers.address(src) + position).isEqualTo(PageBuffers.address(in) + position);
                seen[0]++;
            }
        }).decode(in);
        assertThat(seen[0]).isEqualTo(11);
    }

    @Test
    void validatorAcceptsMatchingBlocksAndGivesPageSizes() throws IOException {
        BlockValidator v = new BlockValidator(List.of(new RamBlockInfo(0, "pc.ram", 64 * 4096, 4096),
                new RamBlockInfo(1, "/rom@etc/acpi/tables", 4 * 4096, 4096), new RamBlockInfo(2, "extra", 4096, 4096)));
        assertThat(Streams.decode(sample, DecoderOptions.defaults().withValidator(v)).events).isEqualTo(whole);
    }

    @Test
    void validatorRefusesOtherBlockLengths() {
        BlockValidator v = BlockValidator.of(4096, "pc.ram", 32 * 4096, "/rom@etc/acpi/tables", 4 * 4096);
        assertThatThrownBy(() -> Streams.decode(sample, DecoderOptions.defaults().withValidator(v)))
                .isInstanceOfSatisfying(CodecException.class, e -> {
                    assertThat(e.kind()).isEqualTo(CodecException.Kind.OUT_OF_BLOCK);
                    assertThat(e.field()).isEqualTo("used length of pc.ram");
                    assertThat(e.value()).isEqualTo(String.valueOf(64 * 4096));
                    assertThat(e.expected()).isEqualTo(String.valueOf(32 * 4096));
                });
    }

    @Test
    void hugePageBlockCarriesItsPageSize() throws IOException {
        RamBlockInfo huge = new RamBlockInfo(0, "mem0", 4L << 21, 2 << 20);
        byte[] s = Streams.encode(e -> {
            e.writeHeader().writeSectionStart(SectionType.START, 0, "ram", 0, 4)
                    .writeMemSize(List.of(huge), true, 4096).writeEos().writeFooter(0);
            e.writeCommand(new Command.PostcopyRamDiscard("mem0", List.of(new DiscardRange(2 << 20, 2 << 20))));
            e.writeSectionPart(SectionType.END, 0).writeEos().writeFooter(0).writeEof();
        });
        BlockValidator v = new BlockValidator(List.of(huge));
        Recorder r = Streams.decode(s, DecoderOptions.defaults().withValidator(v));
        assertThat(r.blocks).containsExactly(huge);
        // Without knowing the block is huge the decoder reads the page size as the next block: rejected.
        assertThatThrownBy(() -> Streams.decode(s)).isInstanceOf(CodecException.class);
        // A discard not aligned to the huge page is out of block.
        byte[] bad = Streams.encode(e -> {
            e.writeHeader().writeSectionStart(SectionType.START, 0, "ram", 0, 4)
                    .writeMemSize(List.of(huge), true, 4096).writeEos().writeFooter(0);
            e.writeCommand(new Command.PostcopyRamDiscard("mem0", List.of(new DiscardRange(4096, 4096))));
        });
        assertThatThrownBy(() -> Streams.decode(bad, DecoderOptions.defaults().withValidator(v)))
                .isInstanceOfSatisfying(CodecException.class, e -> assertThat(e.field()).isEqualTo("discard length"));
    }

    @Test
    void bytesAfterEofAreNotConsumed() throws IOException {
        byte[] s = java.util.Arrays.copyOf(sample, sample.length + 4);
        ByteBuffer b = ByteBuffer.wrap(s);
        StreamDecoder d = new StreamDecoder(new Recorder());
        assertThat(d.decode(b)).isTrue();
        assertThat(b.remaining()).isEqualTo(4);
    }

    @Test
    void encoderWritesFromANativeAddress() throws IOException {
        long addr = io.postcopy.codec.internal.NativeMemory.allocate(4096);
        try {
            ByteBuffer p = Streams.page(42);
            io.postcopy.codec.internal.NativeMemory.copyFromBuffer(p, 0, addr, 4096);
            byte[] viaAddr = Streams.encode(e -> e.writePage(Streams.RAM, 0x5000, addr));
            byte[] viaBuf = Streams.encode(e -> e.writePage(Streams.RAM, 0x5000, p, 0));
            assertThat(hex(viaAddr)).isEqualTo(hex(viaBuf));
        } finally {
            io.postcopy.codec.internal.NativeMemory.free(addr);
        }
    }

    @Test
    void emptyPackageIsAccepted() throws IOException {
        byte[] s = unhex("5145564d00000003" + "080007000400000000" + "00");
        Recorder r = Streams.decode(s);
        assertThat(r.packages).hasSize(1);
        assertThat(r.packages.get(0).length()).isZero();
    }
}
