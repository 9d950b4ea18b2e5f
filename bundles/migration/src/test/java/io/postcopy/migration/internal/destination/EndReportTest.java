package io.postcopy.migration.internal.destination;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.CodecException;
import io.postcopy.fault.MissingPages;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.Refused;
import java.io.IOException;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedChannelException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The state and the one line a failed incoming migration ends with, for each kind of cause: no socket needed. */
class EndReportTest {
    private static final CodecException END_OF_INPUT = new CodecException(CodecException.Kind.TRUNCATED, 89, "stream",
            "end of input in state TOP", "EOF record 0x00");
    private static final MissingPages NONE = new MissingPages(List.of(), 0);

    private static MissingPages missing(int ranges) {
        List<MissingPages.Range> r = new java.util.ArrayList<>();
        for (int i = 0; i < ranges; i++) r.add(new MissingPages.Range("pc.ram", i * 8192L, 4096));
        return new MissingPages(r, 4096L * ranges);
    }

    @Test
    void theSourceClosingItsStreamSaysInWhichState() {
        EndReport r = EndReport.failed(END_OF_INPUT, false, MigrationState.SETUP, null);
        assertThat(r.state()).isEqualTo(MigrationState.FAILED);
        assertThat(r.reason()).isEqualTo("connection closed by the source in SETUP: TRUNCATED at offset 89: stream = "
                + "end of input in state TOP, expected EOF record 0x00");
        assertThat(EndReport.endOfInput(END_OF_INPUT)).isTrue();
    }

    @Test
    void aCancelIsSaidAsSuchWhateverClosedTheConnection() {
        EndReport r = EndReport.failed(new AsynchronousCloseException(), true, MigrationState.POSTCOPY, NONE);
        assertThat(r.state()).isEqualTo(MigrationState.CANCELLED);
        assertThat(r.reason()).isEqualTo("cancelled on the destination");
    }

    @Test
    void aConnectionClosedHereNamesTheState() {
        assertThat(EndReport.failed(new ClosedChannelException(), false, MigrationState.PRECOPY, null).reason())
                .isEqualTo("connection closed in PRECOPY");
        assertThat(EndReport.failed(new AsynchronousCloseException(), false, MigrationState.SETUP, null).reason())
                .isEqualTo("connection closed in SETUP");
    }

    @Test
    void aRefusalIsItsOwnMessage() {
        EndReport r = EndReport.failed(new Refused("POSTCOPY_RUN before POSTCOPY_LISTEN"), false, MigrationState.PRECOPY, NONE);
        assertThat(r.state()).isEqualTo(MigrationState.FAILED);
        assertThat(r.reason()).isEqualTo("POSTCOPY_RUN before POSTCOPY_LISTEN");
    }

    @Test
    void aBrokenConnectionAndOtherFailuresAreDescribed() {
        assertThat(EndReport.failed(new IOException("Connection reset"), false, MigrationState.POSTCOPY, null).reason())
                .isEqualTo("connection to the source failed in POSTCOPY: IOException: Connection reset");
        CodecException malformed = new CodecException(CodecException.Kind.MALFORMED, 12, "section type", 9, "1..8");
        assertThat(EndReport.failed(malformed, false, MigrationState.PRECOPY, null).reason()).isEqualTo(malformed.getMessage());
        assertThat(EndReport.endOfInput(malformed)).isFalse();
        assertThat(EndReport.failed(new IllegalStateException("fault outside every block"), false, MigrationState.POSTCOPY, null)
                .reason()).isEqualTo("fault outside every block");
        assertThat(EndReport.failed(new NullPointerException(), false, MigrationState.POSTCOPY, null).reason())
                .isEqualTo("NullPointerException");
    }

    @Test
    void pagesThatNeverCameAreCountedInRanges() {
        assertThat(EndReport.failed(new Refused("bad"), false, MigrationState.POSTCOPY, missing(1)).reason())
                .isEqualTo("bad; 4096 bytes in 1 range never received");
        assertThat(EndReport.failed(new Refused("bad"), false, MigrationState.POSTCOPY, missing(2)).reason())
                .isEqualTo("bad; 8192 bytes in 2 ranges never received");
        assertThat(EndReport.failed(new Refused("bad"), true, MigrationState.POSTCOPY_PAUSED, missing(3)).reason())
                .isEqualTo("cancelled on the destination; 12288 bytes in 3 ranges never received");
        assertThat(EndReport.failed(new Refused("bad"), false, MigrationState.POSTCOPY, NONE).reason()).isEqualTo("bad");
    }
}
