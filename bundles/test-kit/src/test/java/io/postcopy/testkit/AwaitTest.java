package io.postcopy.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class AwaitTest {
    @Test
    void returnsOnceTheConditionHoldsAndNamesWhatTimedOut() {
        AtomicInteger polls = new AtomicInteger();
        Await.until("three polls", Duration.ofSeconds(5), () -> polls.incrementAndGet() >= 3);
        assertThat(polls.get()).isEqualTo(3);
        assertThatThrownBy(() -> Await.until("never", Duration.ofMillis(50), () -> false))
                .isInstanceOf(AssertionError.class).hasMessage("timed out after 50 ms waiting for never");
    }

    @Test
    void theValueVariantReturnsTheAcceptedValueAndNamesTheLastOne() {
        AtomicInteger n = new AtomicInteger();
        assertThat(Await.until("n at 4", Duration.ofSeconds(5), n::incrementAndGet, v -> v >= 4)).isEqualTo(4);
        assertThatThrownBy(() -> Await.until("n negative", Duration.ofSeconds(1), Duration.ofMillis(100), () -> 7, v -> v < 0))
                .isInstanceOf(AssertionError.class).hasMessage("timed out after 1 s waiting for n negative (last: 7)");
    }

    @Test
    void aConditionThatThrowsEndsTheWait() {
        assertThatThrownBy(() -> Await.until("a shell answer", Duration.ofSeconds(5), () -> {
            throw new java.io.IOException("no shell");
        })).isInstanceOf(AssertionError.class).hasMessage("failed waiting for a shell answer: java.io.IOException: no shell");
        assertThatThrownBy(() -> Await.until("a state", Duration.ofSeconds(5), () -> {
            throw new IllegalStateException("gone");
        })).isInstanceOf(IllegalStateException.class);
    }
}
