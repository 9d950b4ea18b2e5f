package io.postcopy.codec;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import static io.postcopy.codec.Streams.hex;
import static org.assertj.core.api.Assertions.assertThat;

class DiscardBatcherTest {

    private static List<Command.PostcopyRamDiscard> run(String block, long offset, long[][] runs) throws IOException {
        List<Command.PostcopyRamDiscard> out = new ArrayList<>();
        DiscardBatcher b = new DiscardBatcher(out::add);
        b.beginBlock(block, offset);
        for (long[] r : runs) {
            b.addRun(r[0], r[1]);
        }
        b.endBlock();
        assertThat(b.commandCount()).isEqualTo(out.size());
        assertThat(b.rangeCount()).isEqualTo(runs.length);
        return out;
    }

    private static long[][] runs(int n) {
        long[][] r = new long[n][];
        for (int i = 0; i < n; i++) {
            r[i] = new long[] {3L * i, 1 + (i % 2)};
        }
        return r;
    }

    @ParameterizedTest(name = "{0} runs -> {1} commands, last with {2}")
    @CsvSource({"1,1,1", "11,1,11", "12,1,12", "13,2,1", "24,2,12", "25,3,1"})
    void flushesAtTwelveAndAtBlockEnd(int n, int commands, int last) throws IOException {
        List<Command.PostcopyRamDiscard> out = run("pc.ram", 0, runs(n));
        assertThat(out).hasSize(commands);
        for (int i = 0; i < out.size() - 1; i++) {
            assertThat(out.get(i).ranges()).hasSize(12);
        }
        assertThat(out.get(out.size() - 1).ranges()).hasSize(last);
    }

    @Test
    void noRunsNoCommand() throws IOException {
        assertThat(run("pc.ram", 0, new long[0][])).isEmpty();
    }

    @Test
    void bytesAreQemus() throws IOException {
        // Runs relative to a global bitmap whose block starts at page 0x100, as the seed subtracts pds->offset.
        List<Command.PostcopyRamDiscard> out = run("pc.ram", 0x100, new long[][] {{0x101, 2}, {0x180, 1}});
        byte[] bytes = Streams.encode(e -> e.writeCommand(out.get(0)));
        assertThat(hex(bytes)).isEqualTo("08" + "0006" + "0029" + "00" + "06" + hex("pc.ram".getBytes()) + "00"
                + "0000000000001000" + "0000000000002000" + "0000000000080000" + "0000000000001000");
    }

    @Test
    void blocksAreFlushedSeparatelyAndCounted() throws IOException {
        List<Command.PostcopyRamDiscard> out = new ArrayList<>();
        DiscardBatcher b = new DiscardBatcher(out::add);
        long[][] a = runs(5);
        Iterator<long[]> it = List.of(a).iterator();
        b.discardBlock("a", 0, run -> {
            if (!it.hasNext()) {
                return false;
            }
            long[] r = it.next();
            run[0] = r[0];
            run[1] = r[1];
            return true;
        });
        b.beginBlock("b", 0);
        b.addRun(7, 1);
        b.endBlock();
        assertThat(out).extracting(Command.PostcopyRamDiscard::block).containsExactly("a", "b");
        assertThat(b.rangeCount()).isEqualTo(6);
        assertThat(b.commandCount()).isEqualTo(2);
    }

    /** The output covers exactly the input runs, in order, never more than 12 per command, and decodes back. */
    @Property(tries = 300)
    void coversExactlyTheRuns(@ForAll @Size(max = 60) List<@IntRange(min = 1, max = 50) Integer> gapsAndLengths,
                              @ForAll @IntRange(min = 0, max = 1000) int bitmapOffset) throws IOException {
        List<long[]> runs = new ArrayList<>();
        long page = bitmapOffset;
        for (int i = 0; i + 1 < gapsAndLengths.size(); i += 2) {
            page += gapsAndLengths.get(i);
            runs.add(new long[] {page, gapsAndLengths.get(i + 1)});
            page += gapsAndLengths.get(i + 1);
        }
        List<Command.PostcopyRamDiscard> out = run("pc.ram", bitmapOffset, runs.toArray(new long[0][]));
        List<DiscardRange> all = new ArrayList<>();
        for (Command.PostcopyRamDiscard c : out) {
            assertThat(c.ranges()).hasSizeBetween(1, 12);
            all.addAll(c.ranges());
        }
        assertThat(out.size()).isEqualTo((runs.size() + 11) / 12);
        assertThat(all).hasSize(runs.size());
        for (int i = 0; i < runs.size(); i++) {
            assertThat(all.get(i)).isEqualTo(new DiscardRange((runs.get(i)[0] - bitmapOffset) * 4096, runs.get(i)[1] * 4096));
        }
        // and every command decodes to itself against a block large enough
        long used = Math.max(4096, (page - bitmapOffset + 1) * 4096);
        for (Command.PostcopyRamDiscard c : out) {
            byte[] head = Streams.encode(e -> {
                e.writeHeader();
                e.writeSectionStart(SectionType.START, 0, "ram", 0, 4);
                e.writeMemSize(List.of(new RamBlockInfo(0, "pc.ram", used, 4096)), true, 4096);
                e.writeEos();
                e.writeFooter(0);
                e.writeCommand(c);
                e.writeSectionPart(SectionType.END, 0);
                e.writeEos();
                e.writeFooter(0);
                e.writeEof();
            });
            assertThat(Streams.decode(head).commands).containsExactly(c);
        }
    }
}
