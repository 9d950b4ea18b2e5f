package io.postcopy.codec;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import static io.postcopy.codec.Streams.hex;
import static io.postcopy.codec.Streams.unhex;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Each strict rule, one malformed input each: the error names kind, offset, field. */
class ValidationTest {
    static final String HEAD = "5145564d00000003";
    /** START ram id 0 with MEM_SIZE: pc.ram of 0x40000 bytes; EOS; footer. 46 bytes after HEAD. */
    static final String SETUP = "01" + "00000000" + "03" + "72616d" + "00000000" + "00000004"
            + "0000000000040004" + "06" + hex("pc.ram".getBytes()) + "0000000000040000" + "0000000000000010" + "7e00000000";
    static final String PAGE = "00".repeat(4096);
    static final String PART = "0200000000";

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
        bad magic                 | 5145564e00000003                                      | MALFORMED   | 0  | magic
        multifd channel           | 11223344 00000001 00112233445566778899aabbccddeeff 00 | UNSUPPORTED | 0  | magic
        version 2                 | 5145564d00000002                                      | UNSUPPORTED | 4  | stream version
        unknown section type      | HEAD 09                                               | MALFORMED   | 8  | section type
        vmdescription             | HEAD 06                                               | UNSUPPORTED | 8  | section type
        config name too long      | HEAD 0700001000                                       | MALFORMED   | 9  | configuration name length
        config not first          | HEAD 0800010000 07000000016c                          | MALFORMED   | 13 | configuration section
        device section top level  | HEAD 0400000001 03637075 00000000 00000001            | UNSUPPORTED | 8  | top-level section
        PART unknown section      | HEAD 0200000007                                       | MALFORMED   | 9  | PART section id
        unknown command           | HEAD 08000c0000                                       | MALFORMED   | 9  | command
        command 0 INVALID         | HEAD 0800000000                                       | MALFORMED   | 9  | command
        PING bad length           | HEAD 080002000500000000ff                             | MALFORMED   | 11 | command length
        ADVISE length 8           | HEAD 0800030008 0000000000001000                      | MALFORMED   | 11 | command length
        ADVISE bad summary        | HEAD 0800030010 0000000000000800 0000000000001000     | MALFORMED   | 13 | ADVISE page size summary
        LISTEN with payload       | HEAD 080004000100                                     | MALFORMED   | 11 | command length
        SWITCHOVER_START payload  | HEAD 08000b000100                                     | MALFORMED   | 11 | command length
        discard before MEM_SIZE   | HEAD 0800060014 00 01 61 00 0000000000000000 0000000000001000 | MALFORMED | 13 | discard before block list
        RECV_BITMAP name mismatch | HEAD 08000a0003 05616263                              | MALFORMED   | 13 | RECV_BITMAP name length
        CHANNEL_TOKEN too short   | HEAD 0850430010 00112233445566778899aabbccddeeff      | MALFORMED   | 11 | command length
        PACKAGED over cap         | HEAD 0800070004 7fffffff                              | LIMIT       | 13 | package length
        nested package            | HEAD 0800070004 00000009 080007000400000000            | MALFORMED   | 18 | command
        package bad section type  | HEAD 0800070004 00000001 03                           | MALFORMED   | 17 | package section type
        page before MEM_SIZE      | HEAD 0200000000                                       | MALFORMED   | 9  | PART section id
        first record not MEM_SIZE | HEAD 01000000000372616d0000000000000004 0000000000000010 | MALFORMED | 25 | RAM flags
        XBZRLE                    | HEAD SETUP PART 0000000000000040                      | UNSUPPORTED | 66 | RAM flag
        COMPRESS                  | HEAD SETUP PART 0000000000000108                      | UNSUPPORTED | 66 | RAM flag
        HOOK                      | HEAD SETUP PART 0000000000000080                      | UNSUPPORTED | 66 | RAM flag
        MULTIFD_FLUSH             | HEAD SETUP PART 0000000000000200                      | UNSUPPORTED | 66 | RAM flag
        obsolete FULL flag        | HEAD SETUP PART 0000000000000001                      | UNSUPPORTED | 66 | RAM flag
        PAGE and ZERO together    | HEAD SETUP PART 000000000000000a                      | MALFORMED   | 66 | RAM flags
        no kind flag              | HEAD SETUP PART 0000000000000020                      | MALFORMED   | 66 | RAM flags
        second MEM_SIZE           | HEAD SETUP PART 0000000000040004                      | MALFORMED   | 66 | RAM flags
        CONTINUE first            | HEAD SETUP PART 0000000000000028 PAGE                 | MALFORMED   | 66 | RAM flags
        unknown block             | HEAD SETUP PART 0000000000000008 06 70632e726f6d PAGE | OUT_OF_BLOCK| 74 | RAM record idstr
        page beyond block         | HEAD SETUP PART 0000000000040008 06 70632e72616d PAGE | OUT_OF_BLOCK| 66 | page offset in pc.ram
        zero beyond block         | HEAD SETUP PART 0000000000fff002 06 70632e72616d 00   | OUT_OF_BLOCK| 66 | page offset in pc.ram
        EOS with address          | HEAD SETUP PART 0000000000001010                      | MALFORMED   | 66 | EOS record
        footer wrong id           | HEAD SETUP PART 0000000000000010 7e00000001           | MALFORMED   | 74 | section footer
        footer at top level       | HEAD SETUP 7e00000000                                 | MALFORMED   | 61 | section type
        EOF with open section     | HEAD SETUP 00                                         | MALFORMED   | 61 | EOF
        idstr not printable       | HEAD SETUP PART 0000000000000008 02 0a41 PAGE         | MALFORMED   | 75 | RAM record idstr
        discard version 1         | HEAD SETUP 0800060019 01 06 70632e72616d 00 0000000000000000 0000000000001000 | UNSUPPORTED | 66 | discard version
        discard no nul            | HEAD SETUP 0800060019 00 06 70632e72616d 01 0000000000000000 0000000000001000 | MALFORMED | 74 | discard name terminator
        discard 0 ranges          | HEAD SETUP 0800060009 00 06 70632e72616d 00                | MALFORMED   | 64 | command length
        discard ragged length     | HEAD SETUP 080006001a 00 06 70632e72616d 00 0000000000000000 0000000000001000 00 | MALFORMED | 64 | command length
        discard name too long     | HEAD SETUP 0800060014 00 20 70632e72616d 00 0000000000000000 0000000000000000 | MALFORMED | 67 | discard name length
        discard unknown block     | HEAD SETUP 0800060019 00 06 70632e726f6d 00 0000000000000000 0000000000001000 | OUT_OF_BLOCK | 75 | discard block
        discard beyond block      | HEAD SETUP 0800060019 00 06 70632e72616d 00 000000000003f000 0000000000002000 | OUT_OF_BLOCK | 75 | discard end
        discard unaligned         | HEAD SETUP 0800060019 00 06 70632e72616d 00 0000000000000800 0000000000001000 | OUT_OF_BLOCK | 75 | discard start
        discard empty range       | HEAD SETUP 0800060019 00 06 70632e72616d 00 0000000000000000 0000000000000000 | OUT_OF_BLOCK | 75 | discard length
        discard overflow          | HEAD SETUP 0800060019 00 06 70632e72616d 00 7ffffffffffff000 7ffffffffffff000 | OUT_OF_BLOCK | 75 | discard end
        MEM_SIZE over total       | HEAD 01000000000372616d0000000000000004 0000000000001004 06 70632e72616d 0000000000002000 | MALFORMED | 40 | used length of pc.ram
        MEM_SIZE duplicate        | HEAD 01000000000372616d0000000000000004 0000000000002004 01 61 0000000000001000 01 61 0000000000001000 | MALFORMED | 43 | MEM_SIZE block idstr
        MEM_SIZE zero total       | HEAD 01000000000372616d0000000000000004 0000000000000004 | MALFORMED | 25 | MEM_SIZE total
        """)
    void rejects(String name, String hexIn, CodecException.Kind kind, long offset, String field) {
        String h = hexIn.replace("HEAD", HEAD).replace("SETUP", SETUP).replace("PART", PART).replace("PAGE", PAGE);
        byte[] in = unhex(h);
        assertThatThrownBy(() -> Streams.decode(in, DecoderOptions.defaults().withMaxPackageSize(1 << 20)))
                .isInstanceOfSatisfying(CodecException.class, e -> {
                    assertThat(e.kind()).as(e.getMessage()).isEqualTo(kind);
                    assertThat(e.field()).as(e.getMessage()).isEqualTo(field);
                    assertThat(e.offset()).as(e.getMessage()).isEqualTo(offset);
                    assertThat(e.getMessage()).contains(field).contains(e.value()).contains(e.expected());
                });
    }

    /** What QEMU sends only with a capability we refuse: the message names the capability, as migrate-set-capabilities does. */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
        xbzrle   | HEAD SETUP PART 0000000000000040
        compress | HEAD SETUP PART 0000000000000108
        multifd  | HEAD SETUP PART 0000000000000200
        rdma     | HEAD SETUP PART 0000000000000080
        multifd  | 11223344 00000001 00112233445566778899aabbccddeeff 00
        """)
    void capabilityNamed(String capability, String hexIn) {
        byte[] in = unhex(hexIn.replace("HEAD", HEAD).replace("SETUP", SETUP).replace("PART", PART));
        assertThatThrownBy(() -> Streams.decode(in, DecoderOptions.defaults()))
                .isInstanceOfSatisfying(CodecException.class, e -> {
                    assertThat(e.kind()).isEqualTo(CodecException.Kind.UNSUPPORTED);
                    assertThat(e.getMessage()).contains("capability " + capability + " is not supported");
                });
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
        unknown type           | 00080000                                          | MALFORMED    | return-path message type
        type 0                 | 00000000                                          | MALFORMED    | return-path message type
        SHUT length 3          | 00010003000000                                    | MALFORMED    | return-path message length
        REQ_PAGES first        | 0004000c 0000000000001000 00001000                | MALFORMED    | REQ_PAGES
        REQ_PAGES_ID bad name  | 00030013 0000000000001000 00001000 07 70632e72616d | MALFORMED   | REQ_PAGES_ID name length
        request unaligned      | 00030013 0000000000000800 00001000 06 70632e72616d | OUT_OF_BLOCK | request start
        request beyond block   | 00030013 0000000000040000 00001000 06 70632e72616d | OUT_OF_BLOCK | request end
        request two pages      | 00030013 0000000000000000 00002000 06 70632e72616d | OUT_OF_BLOCK | request length
        request unknown block  | 00030013 0000000000000000 00001000 06 70632e726f6d | OUT_OF_BLOCK | request block
        RESUME_ACK 2           | 0006000400000002                                  | MALFORMED    | RESUME_ACK value
        message after SHUT     | 0001000400000000 0002000400000001                 | MALFORMED    | return path
        bitmap wrong size      | 00050007 06 70632e72616d 0000000000000010         | OUT_OF_BLOCK | RECV_BITMAP size
        bitmap bad ending      | 00050007 06 70632e72616d 0000000000000008 0000000000000000 0000000000000000 | MALFORMED | RECV_BITMAP ending
        """)
    void returnPathRejects(String name, String hexIn, CodecException.Kind kind, String field) {
        BlockValidator v = BlockValidator.of(4096, "pc.ram", 0x40000);
        List<ReturnPathMessage> got = new ArrayList<>();
        assertThatThrownBy(() -> new ReturnPathDecoder((m, o) -> got.add(m), v, 1 << 20).decode(ByteBuffer.wrap(unhex(hexIn))))
                .isInstanceOfSatisfying(CodecException.class, e -> {
                    assertThat(e.kind()).as(e.getMessage()).isEqualTo(kind);
                    assertThat(e.field()).as(e.getMessage()).isEqualTo(field);
                });
    }
}
