package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.CodecException;
import io.postcopy.codec.Command;
import io.postcopy.codec.DiscardRange;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.codec.StreamHandler;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.Workload;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Malformed streams written from a raw socket end their own migration with the codec's exact message, SHUT 1
 * and the blocks removed, while the listener goes on and a valid migration after them succeeds.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MalformedStreamTest {
    static final long BLOCK = 1 << 20;
    final Endpoint src = new Endpoint(), dst = new Endpoint();

    @AfterEach
    void close() {
        src.close();
        dst.close();
    }

    /** A valid start: header, configuration, return path, ADVISE, the RAM setup section of one 1 MiB block. */
    static StreamEncoder prefix(ByteArrayOutputStream bos, RamBlockInfo info) throws Exception {
        StreamEncoder e = new StreamEncoder(Channels.newChannel(bos));
        e.writeHeader().writeConfiguration("pc");
        e.writeCommand(new Command.OpenReturnPath());
        e.writeCommand(Command.PostcopyAdvise.of(4096, 4096));
        e.writeSectionStart(SectionType.START, 2, "ram", 0, 4);
        e.writeMemSize(List.of(info), true, 4096);
        e.writeEos().writeFooter(2);
        return e;
    }

    /** What the codec itself says about these bytes (decoded whole, then end of input). */
    static String codecMessage(byte[] stream) {
        StreamDecoder d = new StreamDecoder(new StreamHandler() { });
        try {
            d.decode(ByteBuffer.wrap(stream));
            d.finish();
        } catch (CodecException e) {
            return e.getMessage();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        throw new AssertionError("the stream is valid");
    }

    /** Sends the bytes, closes our side, and returns what came back on the return path. */
    static List<ReturnPathMessage> sendRaw(int port, byte[] stream) throws Exception {
        List<ReturnPathMessage> got = new ArrayList<>();
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", port))) {
            ByteBuffer b = ByteBuffer.wrap(stream);
            while (b.hasRemaining()) c.write(b);
            c.shutdownOutput();
            new ReturnPathDecoder((m, off) -> got.add(m)).decode(c);
        }
        return got;
    }

    void expectFailure(IncomingListener listener, int index, byte[] stream, String expected) throws Exception {
        List<ReturnPathMessage> rp = sendRaw(listener.port(), stream);
        assertThat(rp).last().isEqualTo(new ReturnPathMessage.Shut(1));
        IncomingMigration in = listener.migrations().get(index);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
        assertThat(in.failure()).hasValue(expected);
        assertThat(dst.registry.byName("pc.ram")).as("blocks of a failed migration are removed").isNull();
        assertThat(dst.faults.incoming()).isEmpty();
    }

    @Test
    void malformedStreamsFailAloneAndTheListenerGoesOn() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
        RamBlockInfo info = new RamBlockInfo(0, "pc.ram", BLOCK, 4096);

        // 1. a discard range past the end of the block
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        StreamEncoder e = prefix(bos, info);
        e.writeCommand(new Command.PostcopyRamDiscard("pc.ram", List.of(new DiscardRange(BLOCK - 4096, 8192))));
        e.flush();
        byte[] badDiscard = bos.toByteArray();
        String m1 = codecMessage(badDiscard);
        assertThat(m1).startsWith("OUT_OF_BLOCK at offset ").contains("discard end");
        expectFailure(listener, 0, badDiscard, m1);

        // 2. a page cut short by the end of the connection
        bos = new ByteArrayOutputStream();
        e = prefix(bos, info);
        e.writeSectionPart(SectionType.PART, 2);
        e.writeZero(info, 0, 0);
        byte[] page = new byte[4096];
        java.util.Arrays.fill(page, (byte) 0x5a);
        e.writePage(info, 4096, ByteBuffer.wrap(page), 0);
        e.flush();
        byte[] full = bos.toByteArray();
        byte[] truncated = java.util.Arrays.copyOf(full, full.length - 1000);
        String m2 = codecMessage(truncated);
        assertThat(m2).startsWith("TRUNCATED at offset ");
        expectFailure(listener, 1, truncated, "connection closed by the source in PRECOPY: " + m2);

        // 3. an unknown command number
        bos = new ByteArrayOutputStream();
        e = prefix(bos, info);
        e.flush();
        bos.write(new byte[] {0x08, 0x00, 0x2a, 0x00, 0x00});
        byte[] unknown = bos.toByteArray();
        String m3 = codecMessage(unknown);
        assertThat(m3).startsWith("MALFORMED at offset ").contains("command");
        expectFailure(listener, 2, unknown, m3);

        // then a valid migration on the same listener
        RamBlock ram = src.registry.create("pc.ram", 16 << 20, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 11);
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", listener.port()), OutgoingOptions.defaults());
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = listener.migrations().get(3);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.COMPLETED);
        assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        assertThat(listener.migrations()).extracting(Migration::state).containsExactly(MigrationState.FAILED,
                MigrationState.FAILED, MigrationState.FAILED, MigrationState.COMPLETED);
    }
}
