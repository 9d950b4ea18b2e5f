package io.postcopy.policy.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.policy.BalloonDevice;
import io.postcopy.policy.BalloonInhibitor;
import io.postcopy.uffd.NativeMemory;
import java.lang.annotation.Annotation;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The components as DS drives them, with configurations made the way DS makes them: annotation proxies. */
class PolicyComponentsTest {
    /** A config annotation instance: given values, else the attribute's default, as DS does. */
    static <A extends Annotation> A config(Class<A> type, Map<String, Object> values) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (proxy, method, args) -> {
            if (method.getName().equals("annotationType")) return type;
            if (values.containsKey(method.getName())) return values.get(method.getName());
            if (method.getDefaultValue() != null) return method.getDefaultValue();
            throw new UnsupportedOperationException(method.getName());
        }));
    }

    @Test
    void memoryLockComponentFollowsItsConfiguration() {
        MemoryLockPolicyComponent off = new MemoryLockPolicyComponent();
        off.activate(config(MemoryLockConfig.class, Map.of()));
        assertThat(off.lockMemory()).as("default").isFalse();
        assertThat(off.locked()).isFalse();
        off.deactivate();

        MemoryLockPolicyComponent on = new MemoryLockPolicyComponent();
        try {
            on.activate(config(MemoryLockConfig.class, Map.of("lockMemory", true)));
            assertThat(on.locked()).as("locked at activation").isTrue();
            assertThat(on.beforeUserfault().ok()).isTrue();
            assertThat(on.locked()).isFalse();
            assertThat(on.afterUserfault().ok()).isTrue();
            assertThat(on.locked()).isTrue();
            on.deactivate();
            assertThat(on.locked()).as("unlocked at deactivation").isFalse();
        } finally {
            NativeMemory.munlockall();
        }
    }

    @Test
    void hugePageComponentDefaultsToRestoring() {
        HugePagePolicyComponent c = new HugePagePolicyComponent();
        c.activate(config(HugePageConfig.class, Map.of()));
        assertThat(c.restoreHugePages()).isTrue();
        c.activate(config(HugePageConfig.class, Map.of("restoreHugePages", false)));
        assertThat(c.restoreHugePages()).isFalse();
    }

    @Test
    void balloonComponentTellsWhiteboardDevices() {
        List<String> events = new ArrayList<>();
        BalloonDevice device = new BalloonDevice() {
            @Override public void inflationForbidden() { events.add("forbidden"); }
            @Override public void inflationAllowed() { events.add("allowed"); }
        };
        BalloonInhibitorComponent c = new BalloonInhibitorComponent();
        c.bindDevice(device);
        try (BalloonInhibitor.Inhibition hold = c.inhibit()) {
            assertThat(c.count()).isEqualTo(1);
        }
        c.unbindDevice(device);
        c.inhibit();
        assertThat(events).containsExactly("forbidden", "allowed");
    }
}
