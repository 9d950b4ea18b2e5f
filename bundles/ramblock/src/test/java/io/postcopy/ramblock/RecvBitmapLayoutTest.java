package io.postcopy.ramblock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** Groundwork for postcopy recovery (issue 12): a page bitmap in QEMU's RECV_BITMAP layout, and back. */
class RecvBitmapLayoutTest {
    @Test
    void targetPagesInLittleEndianWordsRoundedUpToWholeWords() {
        PageBitmap b = new PageBitmap(70);
        b.set(0);
        b.set(63);
        b.set(64);
        b.set(69);
        ByteBuffer w = b.toTargetPageWords(1);
        assertThat(w.remaining()).isEqualTo(16);
        w.order(ByteOrder.LITTLE_ENDIAN);
        assertThat(w.getLong(0)).isEqualTo(1L | (1L << 63));
        assertThat(w.getLong(8)).isEqualTo(1L | (1L << 5));
        // the first byte on the wire is the lowest eight pages: little-endian, as QEMU writes it
        assertThat(w.get(0)).isEqualTo((byte) 1);
    }

    @Test
    void aHugePageStandsForAllItsTargetPages() {
        PageBitmap huge = new PageBitmap(3);          // 3 pages of 2 MiB = 1536 target pages
        huge.set(1);
        ByteBuffer w = huge.toTargetPageWords(512).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(w.remaining()).isEqualTo(1536 / 8);
        for (int word = 0; word < 24; word++) {
            assertThat(w.getLong(word * 8)).as("word %d", word).isEqualTo(word >= 8 && word < 16 ? -1L : 0L);
        }
    }

    @Test
    void aResumedSourceKeepsOnlyWhatWasReceivedWhole() {
        PageBitmap sent = new PageBitmap(4);
        for (int p = 0; p < 4; p++) sent.set(p);
        // received: page 0 whole, page 1 half (a huge page cut mid-way counts as not received), page 3 whole
        ByteBuffer words = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        words.putLong(0, 0b1111L | (0b0011L << 4) | (0b1111L << 12));
        sent.retainReceived(words, 4);
        assertThat(sent.get(0)).isTrue();
        assertThat(sent.get(1)).isFalse();
        assertThat(sent.get(2)).isFalse();
        assertThat(sent.get(3)).isTrue();
        assertThatThrownBy(() -> sent.retainReceived(ByteBuffer.allocate(16), 4)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("a bitmap of 16 bytes for 16 target pages (8 expected)");
    }

    @Test
    void roundTrip() {
        PageBitmap a = new PageBitmap(1000);
        for (long p = 0; p < 1000; p += 7) a.set(p);
        PageBitmap b = new PageBitmap(1000);
        for (long p = 0; p < 1000; p++) b.set(p);
        b.retainReceived(a.toTargetPageWords(1), 1);
        for (long p = 0; p < 1000; p++) assertThat(b.get(p)).isEqualTo(a.get(p));
    }
}
