package io.postcopy.codec;

import io.postcopy.codec.internal.Inspector;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * Mutated and truncated valid streams either decode or raise {@link CodecException}: never another
 * exception, never a hang. (The long-running version is benchmarks' FuzzMain.)
 */
class RobustnessTest {

    /** Decodes {@code in}; returns normally or with CodecException only. */
    static void decodeStrictly(byte[] in, int cap) throws CodecException {
        try {
            StreamDecoder d = new StreamDecoder(new Recorder(), DecoderOptions.defaults().withMaxPackageSize(cap));
            d.decode(ByteBuffer.wrap(in));
            d.finish();
        } catch (CodecException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("not a CodecException: " + t, t);
        }
    }

    static byte[] mutate(byte[] src, Random rnd) {
        byte[] m = src.clone();
        int n = 1 + rnd.nextInt(4);
        for (int i = 0; i < n; i++) {
            int at = rnd.nextInt(m.length);
            switch (rnd.nextInt(4)) {
                case 0 -> m[at] = (byte) rnd.nextInt(256);
                case 1 -> m[at] ^= (byte) (1 << rnd.nextInt(8));
                case 2 -> m[at] = (byte) (rnd.nextBoolean() ? 0 : 0xff);
                default -> {
                    int len = Math.min(m.length - at, 1 + rnd.nextInt(16));
                    int to = rnd.nextInt(m.length - len + 1);
                    System.arraycopy(m, at, m, to, len);
                }
            }
        }
        return m;
    }

    @Test
    void mutatedSamplesDecodeOrFailCleanly() throws IOException {
        byte[] sample = Streams.sample();
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Random rnd = new Random(1234);
            int rejected = 0;
            for (int i = 0; i < 20_000; i++) {
                try {
                    decodeStrictly(mutate(sample, rnd), 1 << 20);
                } catch (CodecException e) {
                    rejected++;
                    assertThat(e.getMessage()).contains("offset").contains("expected");
                }
            }
            // most mutations land in page bytes, which any value may take; the rest must be caught
            assertThat(rejected).isBetween(100, 19_900);
        });
    }

    @Test
    void mutatedCaptureDecodesOrFailsCleanly() throws IOException {
        byte[] capture = QemuCaptureTest.gunzip(QemuCaptureTest.FIXTURES.resolve("qemu72-postcopy.stream.gz"));
        // the non-page head (header .. package .. first PART) is where the structure is: mutate it most
        byte[] head = Arrays.copyOf(capture, 20_000);
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Random rnd = new Random(99);
            for (int i = 0; i < 3_000; i++) {
                try {
                    decodeStrictly(mutate(head, rnd), 1 << 20);
                } catch (CodecException expected) {
                    // fine
                }
            }
            for (int i = 0; i < 30; i++) {
                try {
                    decodeStrictly(mutate(capture, rnd), 1 << 20);
                } catch (CodecException expected) {
                    // fine
                }
            }
        });
    }

    @Test
    void everyTruncationIsTruncatedOrMalformed() throws IOException {
        byte[] sample = Streams.sample();
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            for (int len = 0; len < sample.length; len += (len < 2000 ? 1 : 97)) {
                byte[] cut = Arrays.copyOf(sample, len);
                try {
                    decodeStrictly(cut, 1 << 20);
                    throw new AssertionError("truncation at " + len + " accepted");
                } catch (CodecException e) {
                    assertThat(e.kind()).isEqualTo(CodecException.Kind.TRUNCATED);
                }
            }
        });
    }

    @Test
    void packageLengthBeyondTheCapAllocatesNothing() {
        byte[] s = Streams.unhex("5145564d00000003" + "0800070004" + "7fffffff");
        long before = usedHeap();
        try {
            decodeStrictly(s, 64 << 20);
            throw new AssertionError("accepted");
        } catch (CodecException e) {
            assertThat(e.kind()).isEqualTo(CodecException.Kind.LIMIT);
            assertThat(e.value()).isEqualTo(String.valueOf(0x7fffffffL));
        }
        // a package under the cap whose bytes never come: the buffer is sized by what arrived, not by N
        byte[] t = Streams.unhex("5145564d00000003" + "0800070004" + "03ffffff" + "0800040000");
        try {
            decodeStrictly(t, 64 << 20);
            throw new AssertionError("accepted");
        } catch (CodecException e) {
            assertThat(e.kind()).isEqualTo(CodecException.Kind.TRUNCATED);
        }
        assertThat(usedHeap() - before).isLessThan(32 << 20);
    }

    private static long usedHeap() {
        Runtime r = Runtime.getRuntime();
        return r.totalMemory() - r.freeMemory();
    }

    @Test
    void mutatedReturnPathsDecodeOrFailCleanly() throws IOException {
        byte[] rp = QemuCaptureTest.gunzip(QemuCaptureTest.FIXTURES.resolve("qemu72-postcopy.return-path.gz"));
        Random rnd = new Random(5);
        BlockValidator v = BlockValidator.of(4096, "pc.ram", 130L << 20);
        for (int i = 0; i < 20_000; i++) {
            byte[] m = mutate(rp, rnd);
            m = Arrays.copyOf(m, rnd.nextInt(m.length + 1));
            try {
                new ReturnPathDecoder((msg, off) -> { }, rnd.nextBoolean() ? v : null, 1 << 20)
                        .decode(java.nio.channels.Channels.newChannel(new java.io.ByteArrayInputStream(m)));
            } catch (CodecException expected) {
                // fine
            } catch (Throwable t) {
                throw new AssertionError("not a CodecException: " + t, t);
            }
        }
    }

    @Test
    void inspectorReportsMalformedInputInOneLine(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path f = dir.resolve("bad.bin");
        Files.write(f, Streams.unhex("5145564d00000003" + "08000c0000"));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = Inspector.run(new String[] {"inspect", f.toString()}, new PrintStream(out), new PrintStream(err, true));
        assertThat(rc).isEqualTo(2);
        assertThat(err.toString().trim()).doesNotContain("\n").doesNotContain("at io.postcopy")
                .endsWith("MALFORMED at offset 9: command = 12, expected 1..11");
        assertThat(Inspector.run(new String[] {"inspect"}, new PrintStream(out), new PrintStream(err))).isEqualTo(64);
    }

    /** A 4 MiB package made of footer-and-command-like bytes is analysed in linear time. */
    @Test
    void hostilePackageIsLinear() throws IOException {
        int n = 4 << 20;
        ByteBuffer pkg = ByteBuffer.allocate(n);
        pkg.put((byte) 0x04).putInt(1).put((byte) 1).put((byte) 'x').putInt(0).putInt(0);
        while (pkg.remaining() >= 10) {
            pkg.put((byte) 0x7e).putInt(2).put((byte) 0x08).putShort((short) 5).putShort((short) 0);
        }
        byte[] body = java.util.Arrays.copyOf(pkg.array(), pkg.position());
        byte[] s = Streams.encode(e -> e.writeHeader().writePackaged(ByteBuffer.wrap(body)).writeEof());
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            try {
                decodeStrictly(s, 64 << 20);
            } catch (CodecException expected) {
                // either way, quickly
            }
        });
    }
}
