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
 * A QEMU source with the multifd capability opens its main connection and then extra channels starting with
 * the multifd magic 0x11223344 (QEMU 7.2's {@code MultiFDInit_t}). The extra channel is refused naming the
 * capability, and so is the main stream, which stays open on the source's side and would otherwise wait
 * forever for pages that travel on the refused channels.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MultifdChannelTest {
    final Endpoint dst = new Endpoint();

    @AfterEach
    void close() {
        dst.close();
    }

    @Test
    void multifdChannelAndItsMainStreamAreRefusedNamingTheCapability() throws Exception {
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
        // magic, version 1, uuid, channel id 0, padding: QEMU 7.2's MultiFDInit_t (64 bytes)
        byte[] multifdInit = HexFormat.of().parseHex("11223344" + "00000001" + "00112233445566778899aabbccddeeff" + "00"
                + "00".repeat(39));
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            ByteBuffer b = ByteBuffer.wrap(bos.toByteArray());
            while (b.hasRemaining()) main.write(b);
            // the main connection stays open, like QEMU's
            while (dst.registry.byName("pc.ram") == null) { // the block list decoded: the main stream is under way
                Thread.sleep(5);
            }
            try (SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
                extra.write(ByteBuffer.wrap(multifdInit));
                IncomingMigration mainIn = listener.migrations().get(0);
                assertThat(mainIn.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
                IncomingMigration extraIn = listener.migrations().get(1);
                assertThat(extraIn.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
                assertThat(extraIn.failure()).get().asString()
                        .contains("0x11223344 (a multifd channel)").contains("capability multifd is not supported");
                assertThat(mainIn.failure()).get().asString()
                        .startsWith("QEMU opened a multifd channel (" + extraIn.id())
                        .contains("capability multifd is not supported");
                List<ReturnPathMessage> rp = new ArrayList<>();
                new ReturnPathDecoder((m, off) -> rp.add(m)).decode(main);
                assertThat(rp).last().isEqualTo(new ReturnPathMessage.Shut(1));
                assertThat(dst.registry.byName("pc.ram")).isNull();
            }
        }
    }
}
