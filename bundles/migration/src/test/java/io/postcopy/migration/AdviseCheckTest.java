package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.Command;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import java.io.ByteArrayOutputStream;
import java.nio.channels.Channels;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * POSTCOPY_ADVISE carries the source's RAM page-size summary and target page size; like QEMU's
 * {@code loadvm_postcopy_handle_advise}, the destination refuses a mismatch with a message naming both
 * values, answers SHUT 1 and removes the blocks, instead of decoding 64 KiB pages as 4 KiB ones.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AdviseCheckTest {
    static final long BLOCK = 1 << 20;
    final Endpoint dst = new Endpoint();

    @AfterEach
    void close() {
        dst.close();
    }

    /** Header, configuration, return path, PING 1, the given ADVISE, the RAM setup section of one 1 MiB block. */
    static byte[] stream(Command.PostcopyAdvise advise) throws Exception {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        StreamEncoder e = new StreamEncoder(Channels.newChannel(bos));
        e.writeHeader().writeConfiguration("pc-i440fx-7.2");
        e.writeCommand(new Command.OpenReturnPath());
        e.writeCommand(new Command.Ping(1));
        e.writeCommand(advise);
        e.writeSectionStart(SectionType.START, 2, "ram", 0, 4);
        e.writeMemSize(List.of(new RamBlockInfo(0, "pc.ram", BLOCK, 4096)), true, 4096);
        e.writeEos().writeFooter(2);
        e.flush();
        return bos.toByteArray();
    }

    void expectRefused(IncomingListener listener, int index, Command.PostcopyAdvise advise, String expected) throws Exception {
        List<ReturnPathMessage> rp = MalformedStreamTest.sendRaw(listener.port(), stream(advise));
        assertThat(rp).as("PING 1 answered, then SHUT 1").containsExactly(new ReturnPathMessage.Pong(1),
                new ReturnPathMessage.Shut(1));
        IncomingMigration in = listener.migrations().get(index);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
        assertThat(in.failure()).hasValue(expected);
        assertThat(dst.registry.byName("pc.ram")).isNull();
    }

    @Test
    void sixtyFourKibTargetPageIsRefused() throws Exception {
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
        expectRefused(listener, 0, Command.PostcopyAdvise.of(0x10000, 0x10000),
                "POSTCOPY_ADVISE: the source's target page size is 65536, ours is 4096: postcopy needs matching target page sizes");
    }

    @Test
    void pageSizeSummaryMismatchIsRefused() throws Exception {
        // the source says it has 2 MiB pages somewhere; its block list (read ahead) has only 4 KiB pages
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
        expectRefused(listener, 0, Command.PostcopyAdvise.of(0x201000, 4096),
                "POSTCOPY_ADVISE: the source's RAM page-size summary is 0x201000, ours is 0x1000 (the blocks it announces):"
                        + " postcopy needs matching RAM page sizes");
    }

    @Test
    void matchingAdviseIsAccepted() throws Exception {
        // the same stream with QEMU's ADVISE for 4 KiB blocks goes on past ADVISE and the block list: the
        // connection then ends mid-precopy, so it fails for that reason, not for ADVISE
        IncomingListener listener = dst.service.listen(null, IncomingOptions.defaults());
        List<ReturnPathMessage> rp = MalformedStreamTest.sendRaw(listener.port(), stream(Command.PostcopyAdvise.of(0x1000, 4096)));
        assertThat(rp).first().isEqualTo(new ReturnPathMessage.Pong(1));
        IncomingMigration in = listener.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.FAILED);
        assertThat(in.failure()).get().asString().startsWith("connection closed by the source in SETUP").doesNotContain("ADVISE");
    }
}
