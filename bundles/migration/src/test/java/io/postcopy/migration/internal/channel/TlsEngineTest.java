package io.postcopy.migration.internal.channel;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** BoringSSL loads on the machines we build for (Linux x86-64): TLS must not fall back to the slow engine silently. */
class TlsEngineTest {
    @Test
    void boringSslIsTheDefaultEngineHereAndTheJdkOneIsASwitchAway() {
        assertThat(OpenSslEngines.available()).as("netty-tcnative-boringssl-static loads on linux-x86_64").isTrue();
        assertThat(Tls.defaultEngine()).isEqualTo(Tls.Engine.OPENSSL);
        System.setProperty("postcopy.tls.engine", "jdk");
        try {
            assertThat(Tls.defaultEngine()).isEqualTo(Tls.Engine.JDK);
        } finally {
            System.clearProperty("postcopy.tls.engine");
        }
    }
}
