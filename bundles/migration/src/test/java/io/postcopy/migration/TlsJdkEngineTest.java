package io.postcopy.migration;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Every {@link TlsTest} case again with the JDK's SSLEngine on both sides: the engine a host without
 * netty-tcnative's BoringSSL falls back to must accept and refuse exactly the same peers.
 */
class TlsJdkEngineTest extends TlsTest {
    @BeforeAll
    static void jdkEngine() {
        setEngine("jdk");
    }

    @AfterAll
    static void defaultEngine() {
        setEngine(null);
    }
}
