package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.Command;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A QEMU 7.2 source with the postcopy-preempt capability opens a second connection right after its main one
 * ({@code postcopy_preempt_setup} from {@code migrate_fd_connect}) and writes nothing on it until the first
 * requested page in postcopy, which travels there as a RAM page record (be64 offset | flags, the block name,
 * the page) without a stream header. The silent channel is refused at once naming the capability, and so is
 * the main stream, before QEMU gets to postcopy (where a broken connection pauses it instead of failing it).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PostcopyPreemptChannelTest {
    final Endpoint dst = new Endpoint();

    @AfterEach
    void close() {
        dst.close();
    }

    @Test
    void silentPreemptChannelAndItsMainStreamAreRefusedNamingTheCapability() throws Exception {
        refused(null, "nothing sent within");
    }

    @Test
    void urgentPageOnTheExtraChannelIsRefusedNamingTheCapability() throws Exception {
        // what QEMU 7.2 writes there for a request: RAM_SAVE_FLAG_PAGE (0x08) at offset 0x7000, block name, page
        ByteArrayOutputStream page = new ByteArrayOutputStream();
        page.write(HexFormat.of().parseHex("0000000000007008"));
        page.write(6);
        page.write("pc.ram".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        page.write(new byte[4096]);
        refused(page.toByteArray(), "first bytes 0x0, not a migration stream");
    }

    private void refused(byte[] extraBytes, String extraDetail) throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        StreamEncoder e = new StreamEncoder(Channels.newChannel(bos));
        e.writeHeader().writeConfiguration("pc-i440fx-7.2");
        e.writeCommand(new Command.OpenReturnPath());
        e.writeCommand(Command.PostcopyAdvise.of(4096, 4096));
        e.writeSectionStart(SectionType.START, 2, "ram", 0, 4);
        e.writeMemSize(List.of(new RamBlockInfo(0, "pc.ram", 1 << 20, 4096)), true, 4096);
        e.writeEos().writeFooter(2);
        e.flush();
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            ByteBuffer b = ByteBuffer.wrap(bos.toByteArray());
            while (b.hasRemaining()) main.write(b);
            // the main connection stays open, like QEMU's
            while (dst.registry.byName("pc.ram") == null) { // the block list decoded: the main stream is under way
                Thread.sleep(5);
            }
            try (SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
                long t0 = System.nanoTime();
                if (extraBytes != null) {
                    ByteBuffer x = ByteBuffer.wrap(extraBytes);
                    while (x.hasRemaining()) extra.write(x);
                }
                IncomingMigration mainIn = listener.migrations().get(0);
                assertThat(mainIn.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
                assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(2));
                while (listener.migrations().size() < 2) Thread.sleep(5);
                IncomingMigration extraIn = listener.migrations().get(1);
                assertThat(extraIn.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
                assertThat(extraIn.failure()).get().asString()
                        .startsWith("an extra connection from the source of " + mainIn.id())
                        .contains(extraDetail)
                        .contains("capability postcopy-preempt is not supported, turn it off on the source");
                assertThat(mainIn.failure()).get().asString()
                        .startsWith("QEMU opened a postcopy-preempt channel (" + extraIn.id())
                        .contains("capability postcopy-preempt is not supported");
                List<ReturnPathMessage> rp = new ArrayList<>();
                new ReturnPathDecoder((m, off) -> rp.add(m)).decode(main);
                assertThat(rp).last().isEqualTo(new ReturnPathMessage.Shut(1));
                assertThat(dst.registry.byName("pc.ram")).isNull();
            }
        }
    }

    @Test
    void loneConnectionThatIsNoStreamKeepsItsOwnError() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
        try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            c.write(ByteBuffer.wrap(HexFormat.of().parseHex("0000000000007008")));
            while (listener.migrations().isEmpty()) Thread.sleep(5);
            IncomingMigration in = listener.migrations().get(0);
            assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(in.failure()).get().asString().contains("magic").doesNotContain("postcopy-preempt");
        }
    }
}
