package io.postcopy.migration;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * TLS for a listener or a migration, with mutual x509 authentication, configured as QEMU's {@code tls-creds-x509}:
 * a credentials directory holding {@code ca-cert.pem} (the CA(s) whose certificates are trusted), the endpoint's
 * certificate and key ({@code server-cert.pem} + {@code server-key.pem} on a listener, {@code client-cert.pem} +
 * {@code client-key.pem} on a source; keys in PKCS#8 or PKCS#1 RSA PEM, unencrypted) and optionally
 * {@code ca-crl.pem}. TLS 1.3, or 1.2 (QEMU 7.2 negotiates 1.3 with GnuTLS).
 *
 * @param credentialsDir     the directory
 * @param hostname           a source's name for the destination, checked against its certificate (QEMU's
 *                           {@code tls-hostname}); null: the host the source connects to
 * @param authorizedSubjects a listener's accepted client certificate subjects (distinguished names, e.g.
 *                           {@code CN=source1,O=example}; QEMU's {@code tls-authz}); empty: any certificate the CA
 *                           signed
 */
public record TlsOptions(Path credentialsDir, String hostname, List<String> authorizedSubjects) {
    public TlsOptions {
        Objects.requireNonNull(credentialsDir, "credentialsDir");
        authorizedSubjects = List.copyOf(authorizedSubjects);
    }

    public static TlsOptions of(Path credentialsDir) {
        return new TlsOptions(credentialsDir, null, List.of());
    }

    public TlsOptions withHostname(String name) {
        return new TlsOptions(credentialsDir, name, authorizedSubjects);
    }

    public TlsOptions withAuthorizedSubjects(List<String> subjects) {
        return new TlsOptions(credentialsDir, hostname, subjects);
    }
}
