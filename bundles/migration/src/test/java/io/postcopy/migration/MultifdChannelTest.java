package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.Command;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.testkit.Await;
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
 * the multifd magic 0x11223344 (QEMU 7.2's {@code MultiFDInit_t}). On a listener under QEMU's rule
 * ({@code qemuPreempt}) the connection after the main one belongs to it: the migration fails naming the
 * capability, instead of waiting forever for pages that travel on the refused channel. On any other listener a
 * connection proves what it is or is refused alone: a stranger sending the multifd magic fails nothing but itself.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MultifdChannelTest {
    final Endpoint dst = new Endpoint();
    // magic, version 1, uuid, channel id 0, padding: QEMU 7.2's MultiFDInit_t (64 bytes)
    static final byte[] MULTIFD_INIT = HexFormat.of().parseHex("11223344" + "00000001" + "00112233445566778899aabbccddeeff"
            + "00" + "00".repeat(39));

    @AfterEach
    void close() {
        dst.close();
    }

    static byte[] mainStart() throws Exception {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        StreamEncoder e = new StreamEncoder(Channels.newChannel(bos));
        e.writeHeader().writeConfiguration("pc-i440fx-7.2");
        e.writeCommand(new Command.OpenReturnPath());
        e.writeCommand(Command.PostcopyAdvise.of(4096, 4096));
        e.writeSectionStart(SectionType.START, 2, "ram", 0, 4);
        e.writeMemSize(List.of(new RamBlockInfo(0, "pc.ram", 1 << 20, 4096)), true, 4096);
        e.writeEos().writeFooter(2);
        e.flush();
        return bos.toByteArray();
    }

    @Test
    void underQemusRuleTheMultifdChannelFailsItsMigrationNamingTheCapability() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults().withQemuPreempt(true));
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()));
             SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            ByteBuffer b = ByteBuffer.wrap(mainStart());
            while (b.hasRemaining()) main.write(b);     // the main connection stays open, like QEMU's
            extra.write(ByteBuffer.wrap(MULTIFD_INIT));
            Await.until("the main connection's migration", Duration.ofSeconds(30), () -> !listener.migrations().isEmpty());
            IncomingMigration mainIn = listener.migrations().get(0);
            assertThat(mainIn.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
            assertThat(mainIn.failure()).get().asString()
                    .contains("QEMU opened a multifd channel (" + extra.getLocalAddress())
                    .contains("capability multifd is not supported");
            assertThat(listener.migrations()).containsExactly(mainIn);     // the channel is no migration of its own
            List<ReturnPathMessage> rp = new ArrayList<>();
            new ReturnPathDecoder((m, off) -> rp.add(m)).decode(main);
            assertThat(rp).last().isEqualTo(new ReturnPathMessage.Shut(1));
            assertThat(dst.registry.byName("pc.ram")).isNull();
        }
    }

    @Test
    void elsewhereAMultifdConnectionIsRefusedAloneAndTheMigrationGoesOn() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
        try (SocketChannel main = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
            ByteBuffer b = ByteBuffer.wrap(mainStart());
            while (b.hasRemaining()) main.write(b);
            Await.until("block pc.ram created", Duration.ofSeconds(30), () -> dst.registry.byName("pc.ram") != null);
            try (SocketChannel extra = SocketChannel.open(new InetSocketAddress("127.0.0.1", listener.port()))) {
                extra.write(ByteBuffer.wrap(MULTIFD_INIT));
                // refused: closed by us, nothing read into memory, no migration
                assertThat(extra.read(ByteBuffer.allocate(16))).isEqualTo(-1);
            }
            IncomingMigration mainIn = listener.migrations().get(0);
            assertThat(listener.migrations()).containsExactly(mainIn);
            assertThat(mainIn.state()).isIn(MigrationState.SETUP, MigrationState.PRECOPY);
            assertThat(dst.registry.byName("pc.ram")).isNotNull();
        }
    }
}
