package io.postcopy.migration;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * QEMU-style credentials directories for tests, made with BouncyCastle: a CA, certificates it signs (any subject,
 * names and validity), written as ca-cert.pem, server-cert.pem/server-key.pem, client-cert.pem/client-key.pem.
 */
public final class TestCredentials {
    private static final AtomicLong SERIAL = new AtomicLong(System.currentTimeMillis());

    public record Issued(X509Certificate cert, PrivateKey key) {}

    final Issued ca;

    public TestCredentials(String caName) throws Exception {
        KeyPair kp = keys();
        this.ca = new Issued(build("CN=" + caName, kp, "CN=" + caName, kp.getPrivate(), true, Instant.now().minus(Duration.ofDays(1)),
                Instant.now().plus(Duration.ofDays(30)), new String[0]), kp.getPrivate());
    }

    static KeyPair keys() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        return g.generateKeyPair();
    }

    /** A certificate this CA signs for {@code subject}, valid in [from, to], naming the IPs/hosts in {@code names}. */
    Issued issue(String subject, Instant from, Instant to, String... names) throws Exception {
        KeyPair kp = keys();
        return new Issued(build(subject, kp, ca.cert.getSubjectX500Principal().getName(), ca.key, false, from, to, names), kp.getPrivate());
    }

    public Issued issue(String subject, String... names) throws Exception {
        return issue(subject, Instant.now().minus(Duration.ofDays(1)), Instant.now().plus(Duration.ofDays(30)), names);
    }

    private static X509Certificate build(String subject, KeyPair kp, String issuer, PrivateKey signer, boolean isCa, Instant from,
                                         Instant to, String[] names) throws Exception {
        JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(new X500Name(issuer),
                BigInteger.valueOf(SERIAL.incrementAndGet()), Date.from(from), Date.from(to), new X500Name(subject), kp.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(isCa));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(isCa ? KeyUsage.keyCertSign | KeyUsage.cRLSign
                : KeyUsage.digitalSignature | KeyUsage.keyEncipherment));
        if (names.length > 0) {
            GeneralName[] g = new GeneralName[names.length];
            for (int i = 0; i < names.length; i++)
                g[i] = new GeneralName(Character.isDigit(names[i].charAt(0)) ? GeneralName.iPAddress : GeneralName.dNSName, names[i]);
            b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(g));
        }
        return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer)));
    }

    /** A directory with this CA and the given endpoint credentials ("server" or "client"). */
    public Path dir(Path parent, String name, String endpoint, Issued id) throws IOException {
        Path d = Files.createDirectories(parent.resolve(name));
        write(d.resolve("ca-cert.pem"), "CERTIFICATE", encoded(ca.cert));
        write(d.resolve(endpoint + "-cert.pem"), "CERTIFICATE", encoded(id.cert));
        write(d.resolve(endpoint + "-key.pem"), "PRIVATE KEY", id.key.getEncoded());
        return d;
    }

    private static byte[] encoded(X509Certificate c) {
        try {
            return c.getEncoded();
        } catch (java.security.cert.CertificateEncodingException e) {
            throw new IllegalStateException(e);
        }
    }

    static void write(Path file, String type, byte[] der) throws IOException {
        String pem = "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(der)
                + "\n-----END " + type + "-----\n";
        Files.writeString(file, pem);
    }
}
