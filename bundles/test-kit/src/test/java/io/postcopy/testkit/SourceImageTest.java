package io.postcopy.testkit;

import static io.postcopy.testkit.SourceImage.PAGE;
import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.uffd.NativeMemory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SourceImageTest {
    @Test
    void zeroPagesAndZeroUnitsAreZeroAndTheRestDependsOnTheSeed() {
        long unit = 8 * PAGE, bytes = 5 * unit;
        long a = SourceImage.create(bytes, unit, 1), b = SourceImage.create(bytes, unit, 2);
        try {
            for (long o = 0; o < bytes; o += PAGE) {
                boolean zero = (o / PAGE) % 7 == 3 || o / unit == 4;
                assertThat(SourceImage.isZeroPage(o, unit)).as("page %d", o / PAGE).isEqualTo(zero);
                assertThat(NativeMemory.isZero(a + o, PAGE)).as("page %d", o / PAGE).isEqualTo(zero);
                assertThat(NativeMemory.nativeCompare(a + o, b + o, PAGE) == 0).isEqualTo(zero);
            }
        } finally {
            NativeMemory.free(a);
            NativeMemory.free(b);
        }
    }

    @Test
    void runsCoverTheRangeInOrderWithDataRunsBetweenZeroPages() {
        List<String> pieces = new ArrayList<>();
        // pages 1..11: 3 and 10 are zero pages
        SourceImage.forEachRun(PAGE, 11 * PAGE, 0, (o, l, zero) -> pieces.add((zero ? "zero " : "data ") + o / PAGE + "+" + l / PAGE));
        assertThat(pieces).containsExactly("data 1+2", "zero 3+1", "data 4+6", "zero 10+1", "data 11+1");
    }
}
