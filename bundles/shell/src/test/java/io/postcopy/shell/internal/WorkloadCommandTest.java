package io.postcopy.shell.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.workload.AccessPattern;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class WorkloadCommandTest {
    @Test
    void durations() {
        assertThat(WorkloadCommand.duration("500ms")).isEqualTo(Duration.ofMillis(500));
        assertThat(WorkloadCommand.duration("30")).isEqualTo(Duration.ofSeconds(30));
        assertThat(WorkloadCommand.duration("5m")).isEqualTo(Duration.ofMinutes(5));
        assertThatThrownBy(() -> WorkloadCommand.duration("5 minutes")).hasMessageContaining("is not like");
    }

    @Test
    void patterns() {
        assertThat(WorkloadCommand.pattern("HotSet")).isEqualTo(AccessPattern.HOTSET);
        assertThatThrownBy(() -> WorkloadCommand.pattern("random")).hasMessageContaining("sequential, uniform, hotset");
    }

    @Test
    void backings() {
        assertThatThrownBy(() -> Backings.parse("tmpfs")).hasMessage("backing \"tmpfs\" is not one of anon, memfd, hugetlb");
    }
}
