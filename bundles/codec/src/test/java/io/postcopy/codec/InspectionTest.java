package io.postcopy.codec;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The inspector's library entry point answers as the command line does. */
class InspectionTest {
    private static final Path STREAM = Path.of("src/test/fixtures/qemu72-postcopy.stream.gz");

    @Test
    void summaryStatusesAndErrorsAsTheCommandLine(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8), e = new PrintStream(err, true, StandardCharsets.UTF_8);
        assertThat(Inspection.run(List.of("inspect", "--summary", STREAM.toString()), o, e)).isEqualTo(Inspection.OK);
        assertThat(out.toString(StandardCharsets.UTF_8)).startsWith("{\"bytes\":").contains("\"PACKAGED\":1");
        assertThat(err.size()).isZero();

        assertThat(Inspection.run(List.of("inspect"), o, e)).isEqualTo(Inspection.USAGE);

        Path junk = Files.write(dir.resolve("junk"), new byte[] {'Q', 'E', 'V', 'X', 0, 0, 0, 3});
        err.reset();
        assertThat(Inspection.run(List.of("inspect", junk.toString()), o, e)).isEqualTo(Inspection.MALFORMED);
        assertThat(err.toString(StandardCharsets.UTF_8)).startsWith("inspect: " + junk + ": ").doesNotContain("\tat ");
    }
}
