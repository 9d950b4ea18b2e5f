package io.postcopy.benchmarks;

import io.postcopy.codec.BlockValidator;
import io.postcopy.codec.CodecException;
import io.postcopy.codec.DecoderOptions;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathEncoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamHandler;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.zip.GZIPInputStream;

/**
 * Mutation fuzzer for the decoders: mutates and truncates valid streams (built ones, and the QEMU capture
 * when found) and checks that each decodes or raises {@link CodecException}, nothing else, within a time
 * bound. Usage: {@code FuzzMain [seconds=60] [seed=1] [capture.gz]}. Exit status 1 on the first finding.
 */
public final class FuzzMain {
    private FuzzMain() {
    }

    static byte[] mutate(byte[] src, Random rnd) {
        byte[] m = src.clone();
        int n = 1 + rnd.nextInt(6);
        for (int i = 0; i < n; i++) {
            int at = rnd.nextInt(m.length);
            switch (rnd.nextInt(5)) {
                case 0 -> m[at] = (byte) rnd.nextInt(256);
                case 1 -> m[at] ^= (byte) (1 << rnd.nextInt(8));
                case 2 -> m[at] = (byte) (rnd.nextBoolean() ? 0 : 0xff);
                case 3 -> {
                    int len = Math.min(m.length - at, 1 + rnd.nextInt(32));
                    int to = rnd.nextInt(m.length - len + 1);
                    System.arraycopy(m, at, m, to, len);
                }
                default -> {
                    if (at + 4 <= m.length) { // interesting 32-bit values
                        int[] v = {0, 1, 0x7fffffff, -1, 0x10000, 4096, 12, 13};
                        ByteBuffer.wrap(m).putInt(at, v[rnd.nextInt(v.length)]);
                    }
                }
            }
        }
        if (rnd.nextInt(8) == 0) {
            m = Arrays.copyOf(m, rnd.nextInt(m.length + 1));
        }
        return m;
    }

    public static void main(String[] args) throws IOException {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 60;
        long seed = args.length > 1 ? Long.parseLong(args[1]) : 1;
        Path capture = Path.of(args.length > 2 ? args[2] : "bundles/codec/src/test/fixtures/qemu72-postcopy.stream.gz");
        List<byte[]> corpus = new ArrayList<>();
        corpus.add(Samples.everything());
        if (Files.exists(capture)) {
            try (InputStream in = new GZIPInputStream(Files.newInputStream(capture))) {
                corpus.add(Arrays.copyOf(in.readAllBytes(), 16_000)); // header, discards, package, first pages
            }
        }
        ByteBuffer rp = ByteBuffer.allocate(8192);
        ReturnPathEncoder enc = new ReturnPathEncoder();
        enc.write(new ReturnPathMessage.Pong(1), rp);
        enc.writePageRequest("pc.ram", 0xc0000, 4096, rp);
        enc.writePageRequest("pc.ram", 0xc1000, 4096, rp);
        enc.write(new ReturnPathMessage.RecvBitmap("pc.ram", ByteBuffer.allocate(1024)), rp);
        byte[] rpBytes = Arrays.copyOf(rp.array(), rp.position());
        BlockValidator v = BlockValidator.of(4096, "pc.ram", 1L << 30);

        Random rnd = new Random(seed);
        StreamHandler nop = new StreamHandler() { };
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        long runs = 0;
        long rejected = 0;
        long slowestNanos = 0;
        while (System.nanoTime() < deadline) {
            for (int k = 0; k < 1000; k++) {
                boolean returnPath = rnd.nextInt(4) == 0;
                byte[] m = mutate(returnPath ? rpBytes : corpus.get(rnd.nextInt(corpus.size())), rnd);
                long t0 = System.nanoTime();
                try {
                    if (returnPath) {
                        new ReturnPathDecoder((msg, off) -> { }, rnd.nextBoolean() ? v : null, 1 << 20).decode(ByteBuffer.wrap(m));
                    } else {
                        StreamDecoder d = new StreamDecoder(nop, DecoderOptions.defaults().withMaxPackageSize(1 << 20));
                        d.decode(ByteBuffer.wrap(m));
                        d.finish();
                    }
                } catch (CodecException e) {
                    rejected++;
                } catch (Throwable t) {
                    System.out.println("FINDING after " + runs + " runs (seed " + seed + "): " + t);
                    t.printStackTrace(System.out);
                    Files.write(Path.of("fuzz-finding.bin"), m);
                    System.exit(1);
                }
                slowestNanos = Math.max(slowestNanos, System.nanoTime() - t0);
                runs++;
            }
        }
        System.out.printf("fuzz: %d mutated inputs in %d s (seed %d): %d rejected with CodecException, %d accepted, "
                + "0 other exceptions; slowest decode %.1f ms%n", runs, seconds, seed, rejected, runs - rejected, slowestNanos / 1e6);
    }
}
