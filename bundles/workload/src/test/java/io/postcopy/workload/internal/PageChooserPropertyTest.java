package io.postcopy.workload.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.workload.AccessPattern;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.DoubleRange;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.LongRange;

/** The page choice of each pattern, checked over many draws. */
class PageChooserPropertyTest {
    @Property(tries = 200)
    void sequentialWalksFromTheThreadsStartAndWraps(@ForAll @LongRange(min = 1, max = 100_000) long pages,
            @ForAll @IntRange(min = 1, max = 16) int threads, @ForAll @IntRange(min = 0, max = 15) int t) {
        int thread = t % threads;
        PageChooser c = new PageChooser(AccessPattern.SEQUENTIAL, pages, thread, threads, 0, 0.1, 0.9, 1);
        long start = pages * thread / threads;
        for (long i = 0; i < Math.min(pages + 3, 300); i++) assertThat(c.next()).isEqualTo((start + i) % pages);
    }

    @Property(tries = 100)
    void everyPatternStaysInsideTheBlock(@ForAll AccessPattern pattern,
            @ForAll @LongRange(min = 1, max = 1L << 40) long pages, @ForAll long seed) {
        PageChooser c = new PageChooser(pattern, pages, 0, 1, 0.5, 0.01, 0.5, seed);
        for (int i = 0; i < 1000; i++) assertThat(c.next()).isBetween(0L, pages - 1);
    }

    @Property(tries = 30)
    void hotSetReceivesItsShareOfAccesses(@ForAll @DoubleRange(min = 0.01, max = 0.5) double hotPages,
            @ForAll @DoubleRange(min = 0, max = 1) double hotAccesses, @ForAll long seed) {
        long pages = 10_000, hot = PageChooser.hotPages(pages, hotPages);
        PageChooser c = new PageChooser(AccessPattern.HOTSET, pages, 0, 1, 0, hotPages, hotAccesses, seed);
        int n = 20_000, inHot = 0;
        for (int i = 0; i < n; i++) if (c.next() < hot) inHot++;
        // binomial: 4 sigma is at most 0.0142 for n = 20000
        assertThat((double) inHot / n).isCloseTo(hotAccesses, org.assertj.core.data.Offset.offset(0.015));
    }

    @Property(tries = 30)
    void writeFractionIsHonoured(@ForAll @DoubleRange(min = 0, max = 1) double writes, @ForAll long seed) {
        PageChooser c = new PageChooser(AccessPattern.UNIFORM, 10, 0, 1, writes, 0.1, 0.9, seed);
        int n = 20_000, w = 0;
        for (int i = 0; i < n; i++) if (c.nextIsWrite()) w++;
        if (writes == 0) assertThat(w).isZero();
        else if (writes == 1) assertThat(w).isEqualTo(n);
        else assertThat((double) w / n).isCloseTo(writes, org.assertj.core.data.Offset.offset(0.015));
    }

    @Property(tries = 20)
    void sameSeedSameChoices(@ForAll AccessPattern pattern, @ForAll long seed) {
        PageChooser a = new PageChooser(pattern, 1000, 1, 2, 0.5, 0.2, 0.8, seed);
        PageChooser b = new PageChooser(pattern, 1000, 1, 2, 0.5, 0.2, 0.8, seed);
        for (int i = 0; i < 100; i++) {
            assertThat(a.next()).isEqualTo(b.next());
            assertThat(a.nextIsWrite()).isEqualTo(b.nextIsWrite());
        }
    }
}
