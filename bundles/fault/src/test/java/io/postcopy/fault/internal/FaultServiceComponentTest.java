package io.postcopy.fault.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

class FaultServiceComponentTest {
    @Test
    void rankingIsReadFromIntegersAndFromConfigAdminText() {
        assertThat(FaultServiceComponent.ranking(Map.of("service.ranking", 100))).isEqualTo(100);
        assertThat(FaultServiceComponent.ranking(Map.of("service.ranking", "100"))).isEqualTo(100);
        assertThat(FaultServiceComponent.ranking(Map.of("service.ranking", " -5 "))).isEqualTo(-5);
        assertThat(FaultServiceComponent.ranking(Map.of("service.ranking", 7L))).isEqualTo(7);
        assertThat(FaultServiceComponent.ranking(Map.of("service.ranking", "high"))).isZero();
        assertThat(FaultServiceComponent.ranking(Map.of())).isZero();
    }
}
