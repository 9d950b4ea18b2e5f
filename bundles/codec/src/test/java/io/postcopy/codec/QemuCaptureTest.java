package io.postcopy.codec;

import io.postcopy.codec.internal.Inspector;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPInputStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A real QEMU 7.2 postcopy migration (src/test/fixtures/capture-qemu.sh): 130M guest, no disk, a 2 MiB blob
 * (blob.py, seed "postcopy-codec", 512 pages) loaded at guest address 16 MiB, postcopy started at once.
 */
class QemuCaptureTest {
    static final Path FIXTURES = Path.of("src/test/fixtures");
    static byte[] stream;
    static byte[] returnPath;

    static byte[] gunzip(Path p) throws IOException {
        try (InputStream in = new GZIPInputStream(Files.newInputStream(p))) {
            return in.readAllBytes();
        }
    }

    @BeforeAll
    static void load() throws IOException {
        stream = gunzip(FIXTURES.resolve("qemu72-postcopy.stream.gz"));
        returnPath = gunzip(FIXTURES.resolve("qemu72-postcopy.return-path.gz"));
    }

    /** Same bytes as blob.py: page i = 16 x (sha256("seed:i:0") .. sha256("seed:i:7")). */
    static byte[] blobPage(String seed, int i) throws Exception {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        ByteArrayOutputStream unit = new ByteArrayOutputStream();
        for (int j = 0; j < 8; j++) {
            unit.write(sha.digest((seed + ":" + i + ":" + j).getBytes(StandardCharsets.US_ASCII)));
        }
        byte[] u = unit.toByteArray();
        byte[] page = new byte[4096];
        for (int k = 0; k < 16; k++) {
            System.arraycopy(u, 0, page, k * 256, 256);
        }
        return page;
    }

    @Test
    void decodesCompletelyInQemusOrder() throws IOException {
        Recorder r = new Recorder();
        StreamDecoder d = new StreamDecoder(r);
        assertThat(d.decode(ByteBuffer.wrap(stream))).isTrue();
        assertThat(d.offset()).isEqualTo(stream.length);
        assertThat(r.events.get(1)).isEqualTo("config pc-i440fx-7.2");
        assertThat(r.blocks).extracting(RamBlockInfo::idstr).containsExactly("pc.ram", "/rom@etc/acpi/tables", "pc.bios",
                "pc.rom", "/rom@etc/table-loader", "/rom@etc/acpi/rsdp");
        assertThat(r.blocks.get(0).usedLength()).isEqualTo(130L << 20);
        // switch order: discards, PING, PACKAGED(LISTEN, devices, PING, RUN), PING, then postcopy pages
        List<CommandType> types = new ArrayList<>();
        r.commands.forEach(c -> types.add(c.type()));
        assertThat(types).startsWith(CommandType.OPEN_RETURN_PATH, CommandType.PING, CommandType.POSTCOPY_ADVISE);
        int pkg = types.indexOf(CommandType.PACKAGED);
        assertThat(types.get(pkg - 1)).isEqualTo(CommandType.PING);
        assertThat(types.subList(3, pkg - 1)).containsOnly(CommandType.POSTCOPY_RAM_DISCARD).isNotEmpty();
        assertThat(r.commands.get(2)).isEqualTo(Command.PostcopyAdvise.of(4096, 4096));
        PackageContents p = r.packages.get(0);
        assertThat(p.leadingCommands()).containsExactly(new Command.PostcopyListen());
        assertThat(p.trailingCommands()).containsExactly(new Command.Ping(3), new Command.PostcopyRun());
        assertThat(p.sections()).allMatch(DeviceSection::delimited).extracting(DeviceSection::idstr)
                .contains("timer", "cpu", "apic", "0000:00:00.0/I440FX", "mc146818rtc", "globalstate");
        int covered = 5; // LISTEN
        for (DeviceSection s : p.sections()) {
            assertThat(s.offset()).isEqualTo(covered);
            covered += s.length();
        }
        assertThat(covered + 9 + 5).isEqualTo(p.length());
        assertThat(r.pages).isGreaterThanOrEqualTo(512);
        assertThat(r.events).last().isEqualTo("eof");
    }

    @Test
    void splitReadsGiveTheSameEvents() throws IOException {
        List<String> whole = Streams.decode(stream).events;
        assertThat(StreamDecoderTest.decodeInPieces(stream, 1, 100_000)).isEqualTo(whole);
        assertThat(StreamDecoderTest.decodeInPieces(stream, 2, 5_000)).isEqualTo(whole);
    }

    @Test
    void summaryCountsTheRecords() {
        String json = inspect("inspect", "--summary", FIXTURES.resolve("qemu72-postcopy.stream.gz").toString());
        assertThat(json).startsWith("{\"bytes\":" + stream.length + ",\"configuration\":\"pc-i440fx-7.2\"")
                .contains("\"commands\":{\"OPEN_RETURN_PATH\":1,\"PING\":3,\"POSTCOPY_ADVISE\":1,\"POSTCOPY_RAM_DISCARD\":6,\"PACKAGED\":1}")
                .contains("\"package_commands\":{\"POSTCOPY_LISTEN\":1,\"PING\":1,\"POSTCOPY_RUN\":1}")
                .contains("\"discard_ranges\":6")
                .contains("\"sections\":{\"START\":1,\"PART\":10,\"END\":1,\"FULL\":0,\"EOF\":1}")
                .contains("{\"name\":\"pc.ram\",\"used_length\":136314880}")
                .contains("{\"name\":\"/rom@etc/acpi/rsdp\",\"used_length\":4096}");
        Recorder r = new Recorder();
        try {
            new StreamDecoder(r).decode(ByteBuffer.wrap(stream));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        assertThat(json).contains("\"ram\":{\"PAGE\":" + r.pages + ",\"ZERO\":" + r.zeros + ",");
    }

    @Test
    void returnPathHasPongsARequestAndShut() throws IOException {
        BlockValidator v = BlockValidator.of(4096, "pc.ram", 130L << 20);
        List<ReturnPathMessage> got = new ArrayList<>();
        ReturnPathDecoder d = new ReturnPathDecoder((m, off) -> got.add(m), v, 1 << 20);
        d.decode(ByteBuffer.wrap(returnPath));
        assertThat(d.offset()).isEqualTo(returnPath.length);
        assertThat(got).contains(new ReturnPathMessage.Pong(1), new ReturnPathMessage.Pong(2), new ReturnPathMessage.Pong(3));
        assertThat(got).last().isEqualTo(new ReturnPathMessage.Shut(0));
        assertThat(got).filteredOn(m -> m instanceof ReturnPathMessage.ReqPagesId).isNotEmpty()
                .allSatisfy(m -> assertThat(((ReturnPathMessage.ReqPagesId) m).block()).isEqualTo("pc.ram"));
        String json = inspect("inspect", "--return-path", "--summary", FIXTURES.resolve("qemu72-postcopy.return-path.gz").toString());
        assertThat(json).contains("\"SHUT\":1").contains("\"REQ_PAGES_ID\":").contains("\"PONG\":4");
    }

    @Test
    void ramDigestReconstructsTheBlobAtItsGuestAddress(@TempDir Path dir) throws Exception {
        inspect("inspect", "--ram-digest", dir.toString(), FIXTURES.resolve("qemu72-postcopy.stream.gz").toString());
        byte[] digest = Files.readAllBytes(dir.resolve("pc.ram.sha256"));
        assertThat(digest.length).isEqualTo((130 << 20) / 4096 * 32);
        assertThat(dir.resolve("_rom@etc_acpi_rsdp.sha256")).hasSize(32);
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        int first = 0x1000000 / 4096;
        for (int i = 0; i < 512; i++) {
            byte[] expected = sha.digest(blobPage("postcopy-codec", i));
            byte[] got = Arrays.copyOfRange(digest, (first + i) * 32, (first + i + 1) * 32);
            assertThat(got).as("page %d of the blob", i).isEqualTo(expected);
        }
        // and a page the guest never wrote is the zero page
        assertThat(Arrays.copyOfRange(digest, (first + 600) * 32, (first + 601) * 32)).isEqualTo(sha.digest(new byte[4096]));
    }

    static String inspect(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = Inspector.run(args, new PrintStream(out, true), new PrintStream(err, true));
        assertThat(rc).as(err.toString()).isZero();
        return out.toString().trim();
    }
}
