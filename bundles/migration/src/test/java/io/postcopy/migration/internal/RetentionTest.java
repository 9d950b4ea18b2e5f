package io.postcopy.migration.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationState;
import java.lang.reflect.Proxy;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** A long-running server keeps the newest ended migrations only, and never drops a live one. */
class RetentionTest {
    private static Migration migration(String id, MigrationState state) {
        return (Migration) Proxy.newProxyInstance(Migration.class.getClassLoader(), new Class<?>[] {Migration.class},
                (p, m, a) -> switch (m.getName()) {
                    case "id" -> id;
                    case "state" -> state;
                    case "toString" -> id;
                    case "hashCode" -> System.identityHashCode(p);
                    case "equals" -> p == a[0];
                    default -> throw new UnsupportedOperationException(m.getName());
                });
    }

    @Test
    void theOldestEndedGoFirstAndLiveOnesStay() {
        List<Migration> l = new CopyOnWriteArrayList<>(List.of(
                migration("a", MigrationState.COMPLETED), migration("b", MigrationState.POSTCOPY),
                migration("c", MigrationState.FAILED), migration("d", MigrationState.CANCELLED),
                migration("e", MigrationState.COMPLETED), migration("f", MigrationState.SETUP)));
        Settings.pruneEnded(l, 2);
        assertThat(l.stream().map(Migration::id).collect(Collectors.joining())).isEqualTo("bdef");
        Settings.pruneEnded(l, 0);
        assertThat(l.stream().map(Migration::id).collect(Collectors.joining())).isEqualTo("bf");
        Settings.pruneEnded(l, 5);
        assertThat(l).hasSize(2);
    }
}
