package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.workload.Workload;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Issue 15: every state a migration enters reaches the service's {@link MigrationListener}s in order, on the
 * service's event thread, with its figures; a listener that throws or blocks holds up no migration.
 */
class MigrationEventsTest {
    final Endpoint src = new Endpoint(), dst = new Endpoint();

    @AfterEach
    void close() throws IOException {
        src.close();
        dst.close();
    }

    static List<MigrationEvent> of(List<MigrationEvent> all, String id) {
        List<MigrationEvent> l = new ArrayList<>();
        for (MigrationEvent e : all) if (e.id().equals(id)) l.add(e);
        return l;
    }

    @Test
    void bothSidesAreToldEveryStateInOrderAndABadListenerHarmsNothing() throws Exception {
        List<MigrationEvent> seen = new CopyOnWriteArrayList<>();
        List<String> threads = new CopyOnWriteArrayList<>();
        MigrationListener record = e -> {
            seen.add(e);
            threads.add(Thread.currentThread().getName());
        };
        MigrationListener throwing = e -> {
            throw new IllegalStateException("a listener's own bug");
        };
        MigrationListener slow = e -> {
            try {
                Thread.sleep(50);       // longer than the states last: they must not wait for it
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
            }
        };
        for (io.postcopy.migration.standalone.StandaloneMigrationService s : List.of(src.service, dst.service)) {
            s.addMigrationListener(throwing);
            s.addMigrationListener(slow);
            s.addMigrationListener(record);
        }
        RamBlock ram = src.registry.create("pc.ram", 16L << 20, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 5);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults());
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()),
                OutgoingOptions.defaults().withBlocks("pc.ram").withMode(MigrationMode.HYBRID)
                        .withPostcopyAfter(Duration.ofMillis(100)).withMaxBandwidth(64L << 20));
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = l.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).isEqualTo(MigrationState.COMPLETED);
        Await.until("a final state as the last event of both migrations", Duration.ofSeconds(10),
                () -> !of(seen, out.id()).isEmpty() && of(seen, out.id()).get(of(seen, out.id()).size() - 1).state().isFinal()
                        && !of(seen, in.id()).isEmpty() && of(seen, in.id()).get(of(seen, in.id()).size() - 1).state().isFinal());
        for (Migration m : List.of(out, in)) {
            List<MigrationEvent> es = of(seen, m.id());
            assertThat(es).as("events of %s", m.id()).isNotEmpty();
            assertThat(es.get(0).previous()).isNull();
            assertThat(es.get(0).state()).isEqualTo(MigrationState.SETUP);
            for (int i = 1; i < es.size(); i++) assertThat(es.get(i).previous()).isEqualTo(es.get(i - 1).state());
            MigrationEvent last = es.get(es.size() - 1);
            assertThat(last.state()).isEqualTo(MigrationState.COMPLETED);
            assertThat(last.topic()).isEqualTo("io/postcopy/migration/COMPLETED");
            assertThat(last.direction()).isEqualTo(m == out ? "outgoing" : "incoming");
            assertThat(last.blocks()).containsExactly(m == out ? "pc.ram" : "pc.ram");
            assertThat(last.remainingPages()).isZero();
            assertThat(last.totalPages()).isEqualTo(4096);
            assertThat(last.bytes()).isGreaterThan(16L << 20);
            assertThat(last.properties()).containsEntry(MigrationEvent.ID, m.id()).containsEntry(MigrationEvent.STATE, "COMPLETED")
                    .containsKey(MigrationEvent.PREVIOUS);
        }
        assertThat(of(seen, out.id())).extracting(MigrationEvent::state).contains(MigrationState.PRECOPY, MigrationState.POSTCOPY);
        assertThat(threads).containsOnly("postcopy-events");
    }
}
