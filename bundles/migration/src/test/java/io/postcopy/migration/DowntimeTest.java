package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.Workload;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link OutgoingMigration#downtime()}: from the moment the source asks its guest to stop until the destination
 * has read RUN (postcopy) or sent SHUT (precopy); empty before the switch. The source's guest here takes 50 ms
 * to stop, as a guest with many vCPUs might: that time is downtime too.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DowntimeTest {
    static final long SLOW_PAUSE_MS = 50;
    final Endpoint src = new Endpoint(), dst = new Endpoint();

    @AfterEach
    void close() {
        src.close();
        dst.close();
    }

    /** Takes {@link #SLOW_PAUSE_MS} to stop; records whether the migration knew a downtime when asked to pause. */
    GuestControl slowToPause(AtomicReference<OutgoingMigration> out, AtomicReference<Boolean> downtimeAtPause) {
        return GuestControl.of(() -> {
            OutgoingMigration o = out.get();
            downtimeAtPause.set(o != null && o.downtime().isPresent());
            try {
                Thread.sleep(SLOW_PAUSE_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, () -> { });
    }

    /**
     * Migrates a block of {@code size} bytes with {@code options} ({@code ref}, if given, gets the migration as
     * soon as it starts), expects it COMPLETED with every page equal, and returns it.
     */
    OutgoingMigration migrate(long size, OutgoingOptions options, AtomicReference<OutgoingMigration> ref) throws Exception {
        RamBlock ram = src.registry.create("pc.ram", size, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, size);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults());
        OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()), options);
        if (ref != null) ref.set(out);
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        return out;
    }

    @Test
    void hybridMigrationReportsItsDowntimeOnlyOnceTheDestinationRuns() throws Exception {
        AtomicReference<OutgoingMigration> ref = new AtomicReference<>();
        AtomicReference<Boolean> atPause = new AtomicReference<>();
        long before = System.nanoTime();
        OutgoingMigration out = migrate(16 << 20,
                OutgoingOptions.defaults().withMode(MigrationMode.HYBRID).withGuest(slowToPause(ref, atPause)), ref);
        long elapsed = System.nanoTime() - before;
        assertThat(atPause.get()).as("no downtime known when the guest is asked to stop").isFalse();
        assertThat(out.progress().postcopyNanos()).as("it switched to postcopy").isPositive();
        assertThat(out.downtime()).hasValueSatisfying(d -> {
            assertThat(d).as("includes the guest's own 50 ms to stop").isGreaterThanOrEqualTo(Duration.ofMillis(SLOW_PAUSE_MS));
            assertThat(d.toNanos()).as("within the migration").isLessThan(elapsed);
        });
        // QEMU's figure ends when the package is sent, before the destination has read it and answered; the two are
        // equal when the sender lost its CPU to the destination's urgent stream thread between its last write and
        // reading the clock, and the PONG came back first (never more than the whole)
        assertThat(out.downtimeToPackageSent()).hasValueSatisfying(q -> assertThat(q)
                .isGreaterThanOrEqualTo(Duration.ofMillis(SLOW_PAUSE_MS)).isLessThanOrEqualTo(out.downtime().orElseThrow()));
    }

    /**
     * Pure postcopy pauses the guest at the start: the source first waits for the destination to have read the
     * block list (PONG to a PING after it), so creating and registering 256 MiB there is not downtime.
     */
    @Test
    void purePostcopyPausesTheGuestOnlyOnceTheDestinationHasItsBlocks() throws Exception {
        AtomicReference<Boolean> blockThere = new AtomicReference<>();
        OutgoingMigration out = migrate(256 << 20, OutgoingOptions.defaults().withMode(MigrationMode.POSTCOPY).withGuest(
                GuestControl.of(() -> blockThere.set(dst.registry.byName("pc.ram") != null), () -> { })), null);
        assertThat(blockThere.get()).as("the destination had created its block when the source's guest stopped").isTrue();
        assertThat(out.downtime()).isPresent();
        assertThat(out.downtimeToPackageSent()).hasValueSatisfying(q -> assertThat(q).isLessThanOrEqualTo(out.downtime().orElseThrow()));
    }

    @Test
    void precopyOnlyMigrationReportsItsDowntimeAtShut() throws Exception {
        OutgoingMigration out = migrate(8 << 20, OutgoingOptions.defaults().withMode(MigrationMode.PRECOPY_ONLY)
                .withGuest(slowToPause(new AtomicReference<>(), new AtomicReference<>())), null);
        assertThat(out.downtime()).hasValueSatisfying(d ->
                assertThat(d).isGreaterThanOrEqualTo(Duration.ofMillis(SLOW_PAUSE_MS)).isLessThan(Duration.ofSeconds(30)));
        assertThat(out.downtimeToPackageSent()).as("no package in precopy: the whole downtime").isEqualTo(out.downtime());
    }
}
