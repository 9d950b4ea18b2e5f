package io.postcopy.migration.internal;

import io.postcopy.migration.MigrationException;
import io.postcopy.migration.TlsOptions;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CRL;
import java.security.cert.CertStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import javax.net.ssl.CertPathTrustManagerParameters;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.TrustManagerFactory;
import javax.security.auth.x500.X500Principal;

/**
 * TLS with mutual x509 authentication from a QEMU-style credentials directory ({@link TlsOptions}). The
 * destination is the server, the source the client; both present certificates signed by a CA in
 * {@code ca-cert.pem}. Connections are wrapped in a {@link TlsWire} (an SSLEngine over the socket that reads
 * and writes from two threads at once, as the stream and the return path need). An EOF
 * without close_notify reads as an ordinary EOF: QEMU 7.2 never sends one, and the stream's own end (EOF record,
 * SHUT) tells a complete migration from a cut one.
 */
public final class Tls {
    private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};
    /** AES-128-GCM first: the cheapest AEAD with AES-NI (the JDK would pick AES-256 first). */
    private static final String[] PREFERRED = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"};

    private static void configure(SSLEngine e) {
        e.setEnabledProtocols(PROTOCOLS);
        java.util.List<String> supported = java.util.List.of(e.getSupportedCipherSuites());
        java.util.List<String> suites = new ArrayList<>();
        for (String c : PREFERRED) if (supported.contains(c)) suites.add(c);
        e.setEnabledCipherSuites(suites.toArray(new String[0]));
        SSLParameters p = e.getSSLParameters();
        p.setUseCipherSuitesOrder(true);
        e.setSSLParameters(p);
    }

    /** Where the engines come from: BoringSSL through netty-tcnative when it loads here, else the JDK's. */
    enum Engine { OPENSSL, JDK }

    /**
     * The engine a new {@code Tls} uses: BoringSSL unless the system property {@code postcopy.tls.engine=jdk}
     * (a diagnostic switch: the JDK's AES-GCM costs 3-4 times more CPU per byte) or netty-tcnative cannot load here.
     */
    static Engine defaultEngine() {
        if ("jdk".equalsIgnoreCase(System.getProperty("postcopy.tls.engine", ""))) return Engine.JDK;
        return OpenSslEngines.available() ? Engine.OPENSSL : Engine.JDK;
    }

    /** For {@code postcopy:check}: the engine new connections get, and why when it is the JDK's. */
    static String describeEngine() {
        if (defaultEngine() == Engine.OPENSSL) return "BoringSSL (netty-tcnative)";
        return "JDK (" + (OpenSslEngines.available() ? "system property postcopy.tls.engine=jdk" : OpenSslEngines.unavailable()) + ")";
    }

    private final java.util.function.Supplier<SSLEngine> serverEngine;
    private final java.util.function.BiFunction<String, Integer, SSLEngine> clientEngine;
    final Engine engine;
    final TlsOptions options;
    /** Accepted client subjects, each as its set of RDNs; empty: any certificate the CA signed. */
    private final Set<Set<String>> authorized = new HashSet<>();

    private Tls(Engine engine, java.util.function.Supplier<SSLEngine> serverEngine,
                java.util.function.BiFunction<String, Integer, SSLEngine> clientEngine, TlsOptions options) {
        this.engine = engine;
        this.serverEngine = serverEngine;
        this.clientEngine = clientEngine;
        this.options = options;
        for (String s : options.authorizedSubjects()) authorized.add(rdns(new X500Principal(s)));
    }

    /** Loads the listener's (server) or the source's (client) credentials; a clear error naming the file. */
    static Tls load(TlsOptions o, boolean server) {
        return load(o, server, defaultEngine());
    }

    static Tls load(TlsOptions o, boolean server, Engine engine) {
        Path dir = o.credentialsDir();
        try {
            List<X509Certificate> cas = certificates(dir.resolve("ca-cert.pem"));
            String who = server ? "server" : "client";
            List<X509Certificate> chain = certificates(dir.resolve(who + "-cert.pem"));
            PrivateKey key = privateKey(dir.resolve(who + "-key.pem"));
            // the key and chain as they are: a keystore would re-encrypt the key (PKCS#12: PBKDF2, ~30 ms a load)
            javax.net.ssl.KeyManager km = new OneKey(key, chain.toArray(new X509Certificate[0]));
            Set<TrustAnchor> anchors = new HashSet<>();
            for (X509Certificate ca : cas) anchors.add(new TrustAnchor(ca, null));
            PKIXBuilderParameters pkix = new PKIXBuilderParameters(anchors, new X509CertSelector());
            Path crl = dir.resolve("ca-crl.pem");
            if (Files.exists(crl)) {
                Collection<? extends CRL> crls = CertificateFactory.getInstance("X.509")
                        .generateCRLs(new ByteArrayInputStream(Files.readAllBytes(crl)));
                pkix.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(crls)));
                pkix.setRevocationEnabled(true);
            } else {
                pkix.setRevocationEnabled(false);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
            tmf.init(new CertPathTrustManagerParameters(pkix));
            if (engine == Engine.OPENSSL) {
                OpenSslEngines e = new OpenSslEngines(server, km, tmf, PROTOCOLS, List.of(PREFERRED));
                return new Tls(engine, e::server, e::client, o);
            }
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(new javax.net.ssl.KeyManager[] {km}, tmf.getTrustManagers(), null);
            return new Tls(engine, ctx::createSSLEngine, ctx::createSSLEngine, o);
        } catch (IOException | GeneralSecurityException | IllegalArgumentException e) {
            throw new MigrationException("TLS credentials in " + dir + ": " + e.getMessage(), e);
        }
    }

    /** One endpoint's key and chain, whatever the peer asks for (the directory holds exactly one). */
    private static final class OneKey extends javax.net.ssl.X509ExtendedKeyManager {
        private final PrivateKey key;
        private final X509Certificate[] chain;

        OneKey(PrivateKey key, X509Certificate[] chain) {
            this.key = key;
            this.chain = chain;
        }

        @Override public String[] getClientAliases(String keyType, java.security.Principal[] issuers) { return new String[] {"endpoint"}; }
        @Override public String chooseClientAlias(String[] keyType, java.security.Principal[] issuers, java.net.Socket s) { return "endpoint"; }
        @Override public String[] getServerAliases(String keyType, java.security.Principal[] issuers) { return new String[] {"endpoint"}; }
        @Override public String chooseServerAlias(String keyType, java.security.Principal[] issuers, java.net.Socket s) { return "endpoint"; }
        @Override public String chooseEngineClientAlias(String[] keyType, java.security.Principal[] issuers, SSLEngine e) { return "endpoint"; }
        @Override public String chooseEngineServerAlias(String keyType, java.security.Principal[] issuers, SSLEngine e) { return "endpoint"; }
        @Override public X509Certificate[] getCertificateChain(String alias) { return chain.clone(); }
        @Override public PrivateKey getPrivateKey(String alias) { return key; }
    }

    /** The destination's side of a connection: client certificate required; {@link TlsWire#handshake} runs it. */
    TlsWire server(SocketChannel raw) {
        SSLEngine e = serverEngine.get();
        e.setUseClientMode(false);
        e.setNeedClientAuth(true);
        configure(e);
        return new TlsWire(raw, e, engine == Engine.OPENSSL);
    }

    /** The source's side: the destination's certificate must name {@code hostname} (as HTTPS checks it). */
    public TlsWire client(SocketChannel raw, String hostname, int port) {
        SSLEngine e = clientEngine.apply(hostname, port);
        e.setUseClientMode(true);
        configure(e);
        SSLParameters p = e.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        e.setSSLParameters(p);
        // BoringSSL works on direct buffers without a copy; the JDK's AES-GCM is fastest on arrays
        return new TlsWire(raw, e, engine == Engine.OPENSSL);
    }

    /** {@code t} as our channels use it: direct, or through heap buffers when the JDK encrypts. */
    public ByteChannel channel(TlsWire t) {
        return engine == Engine.OPENSSL ? t : heapBridge(t);
    }

    /** After the handshake: null if the peer's certificate subject may connect, else why not. */
    String refusal(TlsWire c) {
        X500Principal subject;
        try {
            subject = ((X509Certificate) c.engine().getSession().getPeerCertificates()[0]).getSubjectX500Principal();
        } catch (SSLPeerUnverifiedException e) {
            return "no client certificate";
        }
        if (authorized.isEmpty() || authorized.contains(rdns(subject))) return null;
        return "client certificate subject \"" + subject.getName() + "\" is not authorized (tls-authz)";
    }

    /**
     * A subject as the set of its RDNs in canonical form: "CN=source,O=example" and "O=example,CN=source" (the same
     * attributes, printed in either order, as tools differ in that) are one subject.
     */
    static Set<String> rdns(X500Principal p) {
        Set<String> out = new HashSet<>();
        try {
            for (javax.naming.ldap.Rdn r : new javax.naming.ldap.LdapName(p.getName(X500Principal.RFC2253)).getRdns()) {
                out.add(new X500Principal(r.toString()).getName(X500Principal.CANONICAL));
            }
        } catch (javax.naming.InvalidNameException e) {
            throw new IllegalArgumentException("subject " + p + ": " + e.getMessage(), e);
        }
        return out;
    }

    static String subject(TlsWire c) {
        try {
            return ((X509Certificate) c.engine().getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName();
        } catch (SSLPeerUnverifiedException e) {
            return "?";
        }
    }

    private static List<X509Certificate> certificates(Path file) throws IOException, GeneralSecurityException {
        if (!Files.isReadable(file)) throw new IOException(file.getFileName() + " is missing or unreadable");
        List<X509Certificate> l = new ArrayList<>();
        for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(
                new ByteArrayInputStream(Files.readAllBytes(file)))) {
            l.add((X509Certificate) c);
        }
        if (l.isEmpty()) throw new IOException(file.getFileName() + " holds no certificate");
        return l;
    }

    /** An unencrypted PKCS#8 ("PRIVATE KEY") or PKCS#1 RSA ("RSA PRIVATE KEY") PEM key. */
    private static PrivateKey privateKey(Path file) throws IOException, GeneralSecurityException {
        if (!Files.isReadable(file)) throw new IOException(file.getFileName() + " is missing or unreadable");
        String pem = Files.readString(file, StandardCharsets.US_ASCII);
        byte[] pkcs8;
        if (pem.contains("-----BEGIN PRIVATE KEY-----")) {
            pkcs8 = der(pem, "PRIVATE KEY");
        } else if (pem.contains("-----BEGIN RSA PRIVATE KEY-----")) {
            pkcs8 = rsaPkcs1ToPkcs8(der(pem, "RSA PRIVATE KEY"));
        } else {
            throw new IOException(file.getFileName() + ": not an unencrypted PKCS#8 or PKCS#1 RSA key (convert with "
                    + "openssl pkcs8 -topk8 -nocrypt)");
        }
        for (String alg : new String[] {"RSA", "EC", "Ed25519", "RSASSA-PSS"}) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
            } catch (GeneralSecurityException tryNext) {
                // another algorithm
            }
        }
        throw new IOException(file.getFileName() + ": no RSA, EC or Ed25519 key");
    }

    private static byte[] der(String pem, String type) {
        String begin = "-----BEGIN " + type + "-----", end = "-----END " + type + "-----";
        int a = pem.indexOf(begin) + begin.length(), b = pem.indexOf(end, a);
        return Base64.getMimeDecoder().decode(pem.substring(a, b));
    }

    /** PKCS#8 PrivateKeyInfo around a PKCS#1 RSAPrivateKey: SEQ { 0, SEQ { rsaEncryption, NULL }, OCTET STRING }. */
    private static byte[] rsaPkcs1ToPkcs8(byte[] pkcs1) {
        byte[] algorithm = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
        byte[] version = {0x02, 0x01, 0x00};
        byte[] octets = tlv(0x04, pkcs1);
        byte[] body = new byte[version.length + algorithm.length + octets.length];
        System.arraycopy(version, 0, body, 0, version.length);
        System.arraycopy(algorithm, 0, body, version.length, algorithm.length);
        System.arraycopy(octets, 0, body, version.length + algorithm.length, octets.length);
        return tlv(0x30, body);
    }

    private static byte[] tlv(int tag, byte[] value) {
        int n = value.length;
        byte[] len = n < 0x80 ? new byte[] {(byte) n}
                : n < 0x100 ? new byte[] {(byte) 0x81, (byte) n}
                : n < 0x10000 ? new byte[] {(byte) 0x82, (byte) (n >> 8), (byte) n}
                : new byte[] {(byte) 0x83, (byte) (n >> 16), (byte) (n >> 8), (byte) n};
        byte[] out = new byte[1 + len.length + n];
        out[0] = (byte) tag;
        System.arraycopy(len, 0, out, 1, len.length);
        System.arraycopy(value, 0, out, 1 + len.length, n);
        return out;
    }

    /**
     * {@code t} for our direct buffers: bytes go through heap buffers of its own, one copy each way. The JDK's
     * AES-GCM uses its AES-NI/CLMUL intrinsics only on arrays; on direct buffers GHASH runs in Java (measured: 1 GiB
     * pure postcopy over TLS at 0.30 GB/s, the sender's samples in GHASH.blockMult), while a memcpy costs little.
     */
    static ByteChannel heapBridge(ByteChannel t) {
        return new ByteChannel() {
            private final java.nio.ByteBuffer in = java.nio.ByteBuffer.allocate(TlsWire.CHUNK), out = java.nio.ByteBuffer.allocate(TlsWire.CHUNK);

            @Override
            public int read(java.nio.ByteBuffer dst) throws IOException {
                if (!dst.isDirect()) return t.read(dst);
                synchronized (in) {      // one reader at a time (the stream thread)
                    in.clear().limit(Math.min(in.capacity(), dst.remaining()));
                    int n = t.read(in);
                    if (n > 0) dst.put(in.flip());
                    return n;
                }
            }

            @Override
            public int write(java.nio.ByteBuffer src) throws IOException {
                if (!src.isDirect()) return t.write(src);
                synchronized (out) {     // writers are serialised by their callers; this keeps the copy whole
                    int total = 0;
                    while (src.hasRemaining()) {
                        out.clear();
                        int n = Math.min(out.capacity(), src.remaining());
                        out.put(src.slice(src.position(), n)).flip();
                        while (out.hasRemaining()) t.write(out);
                        src.position(src.position() + n);
                        total += n;
                    }
                    return total;
                }
            }

            @Override
            public boolean isOpen() {
                return t.isOpen();
            }

            @Override
            public void close() throws IOException {
                t.close();
            }
        };
    }
}
