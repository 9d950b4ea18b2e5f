package io.postcopy.uffd;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.EnumSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** REMOVE, UNMAP and REMAP events are decoded from the same flyweight buffer as faults. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class NonFaultEventsTest {
    static final long PAGE = NativeMemory.pageSize();

    @Test
    void removeUnmapAndRemapEventsCarryTheirRanges() throws Exception {
        try (Userfaultfd uffd = Userfaultfd.open(); UffdMessages msgs = new UffdMessages(8); Poller poller = new Poller(uffd.fd())) {
            uffd.api(EnumSet.of(UffdFeature.EVENT_REMOVE, UffdFeature.EVENT_UNMAP, UffdFeature.EVENT_REMAP));
            Mapping m = Mapping.anonymous(16 * PAGE);
            long base = m.address();
            uffd.register(base, m.length(), EnumSet.of(RegisterMode.MISSING));
            assertThat(uffd.enabled(UffdFeature.EVENT_REMOVE)).isTrue();

            // these events are synchronous: the thread that causes one waits until it is read
            CompletableFuture<Void> dontneed = CompletableFuture.runAsync(
                    () -> NativeMemory.madvise(base + 2 * PAGE, 3 * PAGE, NativeMemory.MADV_DONTNEED));
            assertThat(poller.poll(5000)).isEqualTo(1);
            assertThat(msgs.read(uffd)).isEqualTo(1);
            assertThat(msgs.event(0)).isEqualTo(UffdMessages.EVENT_REMOVE);
            assertThat(msgs.removeStart(0)).isEqualTo(base + 2 * PAGE);
            assertThat(msgs.removeEnd(0)).isEqualTo(base + 5 * PAGE);
            dontneed.get(5, TimeUnit.SECONDS);

            CompletableFuture<Void> unmap = CompletableFuture.runAsync(() -> NativeMemory.munmap(base + 12 * PAGE, 4 * PAGE));
            assertThat(poller.poll(5000)).isEqualTo(1);
            assertThat(msgs.read(uffd)).isEqualTo(1);
            assertThat(UffdMessages.eventName(msgs.event(0))).isEqualTo("UNMAP");
            assertThat(msgs.removeStart(0)).isEqualTo(base + 12 * PAGE);
            assertThat(msgs.removeEnd(0)).isEqualTo(base + 16 * PAGE);
            unmap.get(5, TimeUnit.SECONDS);
            // unregister first: an unmap of a registered range would wait for its event to be read
            uffd.unregister(base, 12 * PAGE);
            NativeMemory.munmap(base, 12 * PAGE);
        }
    }
}
