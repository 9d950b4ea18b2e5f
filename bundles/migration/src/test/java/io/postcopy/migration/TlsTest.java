package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.workload.Workload;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 13, TLS: our source and destination authenticate each other with x509 certificates from QEMU-style
 * credentials directories; a peer without TLS, with a certificate from another CA, an expired one, or a subject
 * not on the authorization list is refused before a single stream byte is decoded: no migration, no block.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TlsTest {
    static final long SIZE = 16L << 20;
    @TempDir
    Path tmp;
    final Endpoint src = new Endpoint(), dst = new Endpoint();
    TestCredentials ca;
    Path server, client;

    @BeforeEach
    void credentials() throws Exception {
        ca = new TestCredentials("postcopy test CA");
        server = ca.dir(tmp, "server", "server", ca.issue("CN=destination", "127.0.0.1", "localhost"));
        client = ca.dir(tmp, "client", "client", ca.issue("CN=source,O=postcopy"));
    }

    @AfterEach
    void close() {
        src.close();
        dst.close();
    }

    RamBlock sourceBlock() {
        RamBlock ram = src.registry.create("pc.ram", SIZE, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 21);
        return ram;
    }

    OutgoingMigration migrate(IncomingListener l, Path creds, boolean preempt) {
        OutgoingOptions o = OutgoingOptions.defaults().withBlocks("pc.ram").withPostcopyPreempt(preempt);
        if (creds != null) o = o.withTls(TlsOptions.of(creds));
        return src.service.migrate(new InetSocketAddress("127.0.0.1", l.port()), o);
    }

    @ParameterizedTest(name = "preempt {0}")
    @ValueSource(booleans = {true, false})
    void aMigrationOverTlsWithMutualAuthenticationMovesEveryPage(boolean preempt) throws Exception {
        RamBlock ram = sourceBlock();
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withTls(TlsOptions.of(server)
                .withAuthorizedSubjects(List.of("CN=source, O=postcopy"))));
        OutgoingMigration out = migrate(l, client, preempt);
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        IncomingMigration in = l.migrations().get(0);
        assertThat(in.awaitCompletion(Duration.ofSeconds(10))).as("%s", in.failure()).isEqualTo(MigrationState.COMPLETED);
        assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        assertThat(in.postcopyChannel().isPresent()).isEqualTo(preempt);
        assertThat(l.migrations()).containsExactly(in);
    }

    /**
     * BoringSSL (the default here) and the JDK's engine (where netty-tcnative cannot load) speak to each other:
     * the destination's listener and the source each take the engine chosen when they load their credentials.
     */
    @ParameterizedTest(name = "JDK engine on the {0}")
    @ValueSource(strings = {"source", "destination"})
    void theJdkAndBoringSslEnginesSpeakToEachOther(String jdkSide) throws Exception {
        RamBlock ram = sourceBlock();
        String before = System.getProperty(ENGINE);
        try {
            setEngine(jdkSide.equals("destination") ? "jdk" : before);
            IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withTls(TlsOptions.of(server)));
            setEngine(jdkSide.equals("source") ? "jdk" : before);
            OutgoingMigration out = migrate(l, client, true);
            assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            assertThat(Endpoint.mismatchedPages(ram, dst.registry.byName("pc.ram"))).isZero();
        } finally {
            setEngine(before);
        }
    }

    static final String ENGINE = "postcopy.tls.engine";

    static void setEngine(String value) {
        if (value == null || value.isEmpty()) System.clearProperty(ENGINE);
        else System.setProperty(ENGINE, value);
    }

    /** Refused before decoding: the listener lists no migration and has made no block. */
    void refused(IncomingListener l, OutgoingMigration out) throws Exception {
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.FAILED);
        Thread.sleep(100);
        assertThat(l.migrations()).isEmpty();
        assertThat(dst.registry.blocks()).isEmpty();
    }

    @Test
    void aSourceWithoutTlsIsRefused() throws Exception {
        sourceBlock();
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withTls(TlsOptions.of(server)));
        OutgoingMigration out = migrate(l, null, true);
        refused(l, out);
        // the listener's TLS alert (the JDK's engine sends one) is named as such, not decoded as a return-path message
        assertThat(String.valueOf(out.failure().orElse(null))).doesNotContain("message type");
    }

    @Test
    void aCertificateFromAnotherCaIsRefused() throws Exception {
        sourceBlock();
        TestCredentials other = new TestCredentials("another CA");
        Path stranger = other.dir(tmp, "stranger", "client", other.issue("CN=source,O=postcopy"));
        // it trusts our CA for the server's side, so only its own certificate is wrong
        java.nio.file.Files.copy(server.resolve("ca-cert.pem"), stranger.resolve("ca-cert.pem"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withTls(TlsOptions.of(server)));
        refused(l, migrate(l, stranger, false));
    }

    @Test
    void anExpiredCertificateIsRefused() throws Exception {
        sourceBlock();
        Path expired = ca.dir(tmp, "expired", "client", ca.issue("CN=source,O=postcopy",
                Instant.now().minus(Duration.ofDays(10)), Instant.now().minus(Duration.ofDays(1))));
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withTls(TlsOptions.of(server)));
        refused(l, migrate(l, expired, false));
    }

    @Test
    void aSubjectNotOnTheAuthorizationListIsRefused() throws Exception {
        sourceBlock();
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withTls(TlsOptions.of(server)
                .withAuthorizedSubjects(List.of("CN=another source,O=postcopy"))));
        refused(l, migrate(l, client, true));
    }

    @Test
    void theSourceChecksTheDestinationsName() throws Exception {
        sourceBlock();
        Path wrongName = ca.dir(tmp, "wrong", "server", ca.issue("CN=elsewhere", "10.9.8.7"));
        IncomingListener l = dst.service.listen(null, IncomingOptions.defaults().withTls(TlsOptions.of(wrongName)));
        OutgoingMigration out = migrate(l, client, false);
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.FAILED);
        assertThat(out.failure()).get().asString().contains("SSLHandshakeException");
        assertThat(dst.registry.blocks()).isEmpty();
    }

    @Test
    void aListenerOffLoopbackNeedsTlsOrAnExplicitInsecure() throws Exception {
        assertThatThrownBy(() -> dst.service.listen(new InetSocketAddress("0.0.0.0", 0), IncomingOptions.defaults()))
                .isInstanceOf(MigrationException.class).hasMessageContaining("without TLS");
        dst.service.listen(new InetSocketAddress("0.0.0.0", 0), IncomingOptions.defaults().withInsecure(true)).close();
        dst.service.listen(new InetSocketAddress("0.0.0.0", 0), IncomingOptions.defaults().withTls(TlsOptions.of(server))).close();
        assertThatThrownBy(() -> dst.service.listen(null, IncomingOptions.defaults().withTls(TlsOptions.of(tmp.resolve("none")))))
                .isInstanceOf(MigrationException.class).hasMessageContaining("ca-cert.pem is missing");
    }
}
