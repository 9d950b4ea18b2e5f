package io.postcopy.migration.internal.channel;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SupportedCipherSuiteFilter;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.util.List;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManagerFactory;

/**
 * SSLEngines backed by BoringSSL (netty-tcnative-boringssl-static): AES-GCM with the CPU's vector AES, 3-4 times
 * less CPU per byte than the JDK's on the machines we measured (docs/performance.md, "TLS"). The trust decision
 * stays in Java: BoringSSL hands the peer's chain to our PKIX trust manager (CA, CRL, and for the source the
 * destination's name), so both engines accept exactly the same peers.
 *
 * <p>Any thread: netty's context makes engines for any caller, and {@link #available()} only caches a fact (two
 * threads racing its first call may both look it up).
 */
final class OpenSslEngines {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(OpenSslEngines.class);
    private static volatile Boolean available;
    private static volatile String unavailable = "";

    /** Whether BoringSSL loads on this machine; says once why not. */
    static boolean available() {
        Boolean a = available;
        if (a == null) {
            try {
                a = OpenSsl.isAvailable();
                if (!a) unavailable = "BoringSSL is not available here: " + OpenSsl.unavailabilityCause();
                if (!a) LOG.warn("TLS: BoringSSL (netty-tcnative) is not available here ({}); using the JDK's TLS, "
                        + "which costs 3-4 times more CPU per byte", OpenSsl.unavailabilityCause().toString());
            } catch (LinkageError e) {
                a = false;
                unavailable = "netty-tcnative cannot load: " + e;
                LOG.warn("TLS: netty-tcnative cannot load ({}); using the JDK's TLS", e.toString());
            }
            available = a;
        }
        return a;
    }

    /** Why BoringSSL is not used, after {@link #available()} said false. */
    static String unavailable() {
        return unavailable;
    }

    private final SslContext context;

    /** {@code key}: our own key manager; given a key and chain, netty would build a PKCS#12 store (~30 ms of PBKDF2). */
    OpenSslEngines(boolean server, javax.net.ssl.KeyManager key, TrustManagerFactory trust,
                   String[] protocols, List<String> ciphers) throws SSLException {
        SslContextBuilder b = server
                ? SslContextBuilder.forServer(key).clientAuth(ClientAuth.REQUIRE)
                : SslContextBuilder.forClient().keyManager(key);
        // SslProvider.OPENSSL: engines that free their native state when collected, not by reference counts
        context = b.sslProvider(SslProvider.OPENSSL).trustManager(trust).protocols(protocols)
                .ciphers(ciphers, SupportedCipherSuiteFilter.INSTANCE).build();
    }

    SSLEngine server() {
        return context.newEngine(ByteBufAllocator.DEFAULT);
    }

    SSLEngine client(String host, Integer port) {
        return context.newEngine(ByteBufAllocator.DEFAULT, host, port);
    }
}
