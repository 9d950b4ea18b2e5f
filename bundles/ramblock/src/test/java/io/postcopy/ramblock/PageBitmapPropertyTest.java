package io.postcopy.ramblock;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.BitSet;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;

/** PageBitmap against java.util.BitSet as the model, over random sequences of operations. */
class PageBitmapPropertyTest {
    enum Kind { SET, CLEAR, TEST_AND_SET, TEST_AND_CLEAR, SET_RANGE, CLEAR_RANGE, CLEAR_ALL }

    /** One operation; positions are fractions of the size so that any size can use them. */
    record Op(Kind kind, double a, double b) {
        int from(int size) { return (int) Math.min(size - 1, a * size); }
        int to(int size) { return (int) Math.min(size, from(size) + b * b * size); }
    }

    @Provide
    Arbitrary<List<Op>> ops() {
        Arbitrary<Kind> kinds = Arbitraries.frequency(
                Tuple.of(6, Kind.SET), Tuple.of(2, Kind.CLEAR),
                Tuple.of(6, Kind.TEST_AND_SET), Tuple.of(2, Kind.TEST_AND_CLEAR),
                Tuple.of(3, Kind.SET_RANGE), Tuple.of(2, Kind.CLEAR_RANGE),
                Tuple.of(1, Kind.CLEAR_ALL));
        Arbitrary<Double> unit = Arbitraries.doubles().between(0, 1);
        return Combinators.combine(kinds, unit, unit).as(Op::new).list().ofMaxSize(60);
    }

    @Property(tries = 300)
    void agreesWithBitSet(@ForAll @IntRange(min = 1, max = 700) int size, @ForAll("ops") List<Op> ops) {
        PageBitmap bitmap = new PageBitmap(size);
        BitSet model = new BitSet(size);
        for (Op op : ops) {
            int from = op.from(size), to = op.to(size);
            switch (op.kind()) {
                case SET: bitmap.set(from); model.set(from); break;
                case CLEAR: bitmap.clear(from); model.clear(from); break;
                case TEST_AND_SET:
                    assertThat(bitmap.testAndSet(from)).isEqualTo(model.get(from));
                    model.set(from);
                    break;
                case TEST_AND_CLEAR:
                    assertThat(bitmap.testAndClear(from)).isEqualTo(model.get(from));
                    model.clear(from);
                    break;
                case SET_RANGE: bitmap.setRange(from, to); model.set(from, to); break;
                case CLEAR_RANGE: bitmap.clearRange(from, to); model.clear(from, to); break;
                default: bitmap.clearAll(); model.clear();
            }
        }
        assertThat(bitmap.size()).isEqualTo(size);
        assertThat(bitmap.cardinality()).isEqualTo(model.cardinality());
        for (int i = 0; i < size; i++) {
            assertThat(bitmap.get(i)).as("bit %d", i).isEqualTo(model.get(i));
            assertThat(bitmap.nextSetBit(i)).as("nextSetBit(%d)", i).isEqualTo((long) model.nextSetBit(i));
            int clear = model.nextClearBit(i);
            assertThat(bitmap.nextClearBit(i)).as("nextClearBit(%d)", i).isEqualTo(clear < size ? clear : -1L);
        }
        assertThat(bitmap.nextSetBit(size)).isEqualTo(-1);
        assertThat(bitmap.nextClearBit(size)).isEqualTo(-1);
    }

    @Property(tries = 300)
    void runsCoverExactlyTheSetBitsAndAreMaximal(@ForAll @IntRange(min = 1, max = 700) int size,
            @ForAll("ops") List<Op> ops, @ForAll double windowStart, @ForAll double windowLength) {
        PageBitmap bitmap = new PageBitmap(size);
        for (Op op : ops) {
            if (op.kind() == Kind.SET_RANGE || op.kind() == Kind.CLEAR_RANGE) {
                if (op.kind() == Kind.SET_RANGE) bitmap.setRange(op.from(size), op.to(size));
                else bitmap.clearRange(op.from(size), op.to(size));
            } else if (op.kind() == Kind.CLEAR) {
                bitmap.clear(op.from(size));
            } else {
                bitmap.set(op.from(size));
            }
        }
        BitSet fromRuns = new BitSet(size);
        long[] previousEnd = {-2};
        long[] runs = {0};
        bitmap.forEachRun((start, length) -> {
            assertThat(length).isPositive();
            assertThat(start).as("runs ascend and are maximal (never adjacent)").isGreaterThan(previousEnd[0]);
            fromRuns.set((int) start, (int) (start + length));
            previousEnd[0] = start + length;
            runs[0]++;
        });
        for (int i = 0; i < size; i++) assertThat(fromRuns.get(i)).as("page %d", i).isEqualTo(bitmap.get(i));
        assertThat(runs[0] == 0).isEqualTo(bitmap.cardinality() == 0);

        // A window: the runs inside it are the set bits inside it.
        int from = (int) (Math.abs(windowStart % 1) * size), to = (int) Math.min(size, from + Math.abs(windowLength % 1) * size);
        BitSet windowed = new BitSet(size);
        bitmap.forEachRun(from, to, (start, length) -> {
            assertThat(start).isGreaterThanOrEqualTo(from);
            assertThat(start + length).isLessThanOrEqualTo(to);
            windowed.set((int) start, (int) (start + length));
        });
        for (int i = 0; i < size; i++) assertThat(windowed.get(i)).isEqualTo(i >= from && i < to && bitmap.get(i));
    }
}
