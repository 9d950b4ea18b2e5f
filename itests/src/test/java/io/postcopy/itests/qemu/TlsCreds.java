package io.postcopy.itests.qemu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Credentials made with the openssl command as security.md shows: a CA, a server certificate for 127.0.0.1 and
 * localhost, a client certificate; laid out as QEMU's tls-creds-x509 directories ({@code server/}, {@code client/}).
 */
final class TlsCreds {
    private TlsCreds() {}

    static void make(Path dir) throws IOException, InterruptedException {
        Files.createDirectories(dir.resolve("server"));
        Files.createDirectories(dir.resolve("client"));
        run(dir, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "30", "-subj", "/CN=postcopy test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
        issue(dir, "server", "/O=postcopy/CN=destination", "serverAuth", "subjectAltName=DNS:localhost,IP:127.0.0.1");
        issue(dir, "client", "/O=postcopy/CN=qemu-source", "clientAuth", null);
        for (String d : List.of("server", "client")) Files.copy(dir.resolve("ca-cert.pem"), dir.resolve(d).resolve("ca-cert.pem"));
    }

    private static void issue(Path dir, String who, String subject, String purpose, String san) throws IOException, InterruptedException {
        Path ext = dir.resolve(who + ".ext");
        Files.writeString(ext, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                + "extendedKeyUsage=" + purpose + "\n" + (san == null ? "" : san + "\n"));
        run(dir, "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", who + "/" + who + "-key.pem", "-out", who + ".csr", "-subj", subject);
        run(dir, "openssl", "x509", "-req", "-in", who + ".csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "30", "-out", who + "/" + who + "-cert.pem", "-extfile", who + ".ext");
    }

    private static void run(Path dir, String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(new ArrayList<>(List.of(cmd))).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) throw new IOException(String.join(" ", cmd) + " failed: " + out);
    }
}
