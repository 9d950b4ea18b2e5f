package io.postcopy.shell.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class SizesTest {
    @Test
    void parsesBinaryUnits() {
        assertThat(Sizes.parse("SIZE", "8192")).isEqualTo(8192);
        assertThat(Sizes.parse("SIZE", "4096K")).isEqualTo(4096L << 10);
        assertThat(Sizes.parse("SIZE", "256M")).isEqualTo(256L << 20);
        assertThat(Sizes.parse("SIZE", "1g")).isEqualTo(1L << 30);
        assertThat(Sizes.parse("SIZE", "2T")).isEqualTo(2L << 40);
        assertThat(Sizes.parse("SIZE", "64KiB")).isEqualTo(64L << 10);
        assertThat(Sizes.parse("SIZE", "64KB")).isEqualTo(64L << 10);
    }

    @Test
    void refusesAnythingElseWithOneLine() {
        for (String bad : new String[] {"", "12X", "-1M", "1.5G", " 1G", "1G ", "M", "1MM", "0", "0K", "1GB2",
                "99999999999999999999", "9000000000T"}) {
            assertThatThrownBy(() -> Sizes.parse("SIZE", bad)).as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n").startsWith("SIZE"));
        }
        assertThatThrownBy(() -> Sizes.parse("SIZE", "12X")).hasMessageContaining("\"12X\" is not a size");
    }

    @Test
    void printsExactAndHuman() {
        assertThat(Sizes.exact(4096)).isEqualTo("4K");
        assertThat(Sizes.exact(3L << 30)).isEqualTo("3G");
        assertThat(Sizes.exact(4097)).isEqualTo("4097");
        assertThat(Sizes.exact((256L << 20) + 8192)).isEqualTo("262152K");
        assertThat(Sizes.human(512)).isEqualTo("512 B");
        assertThat(Sizes.human(3L << 29)).isEqualTo("1.5 GiB");
    }
}
