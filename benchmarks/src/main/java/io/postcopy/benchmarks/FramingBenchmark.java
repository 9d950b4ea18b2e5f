package io.postcopy.benchmarks;

import io.postcopy.codec.PageBuffers;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.codec.StreamHandler;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.infra.Blackhole;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.util.concurrent.TimeUnit;

/**
 * PAGE/ZERO framing throughput. One operation = one 4 KiB page (payload bytes per second =
 * ops/s x 4096). Baseline: a plain {@code ByteBuffer.put(ByteBuffer)} copy of the same bytes.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class FramingBenchmark {
    static final int PAGES = 256;

    ByteBuffer pageStream;
    ByteBuffer zeroStream;
    ByteBuffer copyDst;
    ByteBuffer pageSource;
    long pageSourceAddress;
    StreamEncoder encoder;
    final RamBlockInfo ram = Samples.RAM;

    /** A channel that drops what it is given (the encoder's cost only). */
    static final class Sink implements WritableByteChannel {
        public int write(ByteBuffer src) {
            int n = src.remaining();
            src.position(src.limit());
            return n;
        }
        public boolean isOpen() { return true; }
        public void close() { }
    }

    @Setup(Level.Trial)
    public void setup() throws IOException {
        pageStream = Samples.pageStream(PAGES, false);
        zeroStream = Samples.pageStream(PAGES, true);
        copyDst = ByteBuffer.allocateDirect(pageStream.capacity());
        pageSource = ByteBuffer.allocateDirect(PAGES * 4096);
        for (int i = 0; i < pageSource.capacity(); i += 8) {
            pageSource.putLong(i, i * 0x9E3779B97F4A7C15L);
        }
        pageSourceAddress = PageBuffers.address(pageSource);
        encoder = new StreamEncoder(new Sink(), 1 << 20, 4096);
    }

    /** The handler a placer would be: it takes the page's address, it does not copy. */
    static final class Placer implements StreamHandler {
        final Blackhole bh;
        Placer(Blackhole bh) { this.bh = bh; }
        @Override public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) {
            bh.consume(offset + position);
        }
        @Override public void onZero(RamBlockInfo block, long offset, int fill, int length) {
            bh.consume(offset + fill);
        }
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public boolean decodePages(Blackhole bh) throws IOException {
        ByteBuffer b = pageStream.duplicate();
        return new StreamDecoder(new Placer(bh)).decode(b);
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public boolean decodeZeroPages(Blackhole bh) throws IOException {
        ByteBuffer b = zeroStream.duplicate();
        return new StreamDecoder(new Placer(bh)).decode(b);
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public ByteBuffer copyBaseline() {
        copyDst.clear();
        return copyDst.put(pageStream.duplicate());
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long encodePagesFromBuffer() throws IOException {
        encoder.writeSectionPart(SectionType.PART, 2);
        for (int i = 0; i < PAGES; i++) {
            encoder.writePage(ram, i * 4096L, pageSource, i * 4096);
        }
        encoder.writeEos().writeFooter(2);
        encoder.flush();
        return encoder.position();
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long encodePagesFromAddress() throws IOException {
        encoder.writeSectionPart(SectionType.PART, 2);
        for (int i = 0; i < PAGES; i++) {
            encoder.writePage(ram, i * 4096L, pageSourceAddress + i * 4096L);
        }
        encoder.writeEos().writeFooter(2);
        encoder.flush();
        return encoder.position();
    }

    @Benchmark
    @OperationsPerInvocation(PAGES)
    public long encodeZeroPages() throws IOException {
        encoder.writeSectionPart(SectionType.PART, 2);
        for (int i = 0; i < PAGES; i++) {
            encoder.writeZero(ram, i * 4096L, 0);
        }
        encoder.writeEos().writeFooter(2);
        encoder.flush();
        return encoder.position();
    }
}
