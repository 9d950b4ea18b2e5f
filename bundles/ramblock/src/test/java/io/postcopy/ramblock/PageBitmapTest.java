package io.postcopy.ramblock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class PageBitmapTest {
    @Test
    void boundsAreChecked() {
        PageBitmap b = new PageBitmap(100);
        assertThatThrownBy(() -> b.get(100)).isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("page 100 of 100");
        assertThatThrownBy(() -> b.testAndSet(-1)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> b.setRange(50, 101)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> b.clearRange(60, 50)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> b.nextSetBit(-1)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> new PageBitmap(-1)).isInstanceOf(IllegalArgumentException.class);
        assertThat(new PageBitmap(0).nextClearBit(0)).isEqualTo(-1);
        assertThat(new PageBitmap(0).cardinality()).isZero();
    }

    @Test
    void wordEdgesAndTheLastPartialWord() {
        PageBitmap b = new PageBitmap(130);
        b.setRange(63, 129);
        assertThat(b.cardinality()).isEqualTo(66);
        assertThat(b.nextSetBit(0)).isEqualTo(63);
        assertThat(b.nextClearBit(63)).isEqualTo(129);
        b.set(129);
        assertThat(b.nextClearBit(63)).as("none left up to the end").isEqualTo(-1);
        List<long[]> runs = new ArrayList<>();
        b.clear(64);
        b.forEachRun((s, l) -> runs.add(new long[] {s, l}));
        assertThat(runs).containsExactly(new long[] {63, 1}, new long[] {65, 65});
        b.clearRange(0, 130);
        assertThat(b.nextSetBit(0)).isEqualTo(-1);
    }

    @Test
    void concurrentTestAndSetHasExactlyOneWinnerPerPage() throws InterruptedException {
        int pages = 1 << 16, threads = 4;
        PageBitmap b = new PageBitmap(pages);
        AtomicLong wins = new AtomicLong();
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> all = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int stride = 2 * t + 1; // different visiting orders, so that threads really collide
            all.add(new Thread(() -> {
                try {
                    start.await();
                } catch (InterruptedException e) {
                    return;
                }
                long mine = 0;
                for (long i = 0; i < pages; i++) if (!b.testAndSet((i * stride) & (pages - 1))) mine++;
                wins.addAndGet(mine);
            }));
        }
        all.forEach(Thread::start);
        start.countDown();
        for (Thread t : all) t.join();
        assertThat(wins.get()).isEqualTo(pages);
        assertThat(b.cardinality()).isEqualTo(pages);
        assertThat(b.nextClearBit(0)).isEqualTo(-1);
    }
}
