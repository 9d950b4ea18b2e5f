package io.postcopy.itests.qemu;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Credentials made by the distribution's own {@code bin/postcopy-tls-creds} (openssl, as security.md shows): a CA,
 * a server certificate for 127.0.0.1 and localhost, a client certificate {@code /O=postcopy/CN=qemu-source};
 * laid out as QEMU's tls-creds-x509 directories ({@code server/}, {@code client/}).
 */
final class TlsCreds {
    static final Path SCRIPT = Path.of("../karaf-distribution/src/main/assembly/bin/postcopy-tls-creds");

    private TlsCreds() {}

    static void make(Path dir) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("bash", SCRIPT.toAbsolutePath().toString(), dir.toAbsolutePath().toString(),
                "DNS:localhost,IP:127.0.0.1", "/O=postcopy/CN=qemu-source", "/O=postcopy/CN=destination", "30")
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) throw new IOException(SCRIPT + " failed: " + out);
    }
}
