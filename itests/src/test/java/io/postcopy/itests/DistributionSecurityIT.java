package io.postcopy.itests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Issue 14: the built distribution, started as an administrator starts it, is safe on a hypervisor host by default:
 * SSH listens on 127.0.0.1 only; no user with a well-known password (karaf/karaf is refused); the local administrator
 * logs in with the key created at first start ({@code etc/admin.key}, owner-only); a viewer is refused
 * {@code postcopy:migrate} and {@code postcopy:block-remove} but may run {@code postcopy:status} (Karaf's command
 * ACLs); {@code bin/postcopy-client} prints no JAVA_HOME warning without JAVA_HOME; digest writes only inside
 * {@code data/postcopy-files}.
 */
class DistributionSecurityIT {
    private static final Set<Integer> TAKEN = new HashSet<>();
    private static KarafInstance karaf;
    private static Path run;
    private static volatile boolean passed;

    @BeforeAll
    static void start() throws Exception {
        File archive = KarafInstance.distribution();
        Path root = Path.of("target", "distribution-security").toAbsolutePath();
        Files.createDirectories(root);
        run = Files.createTempDirectory(root, "run-");
        karaf = KarafInstance.unpack(archive, run.resolve("karaf"), "secure", TAKEN);
        karaf.start();
        karaf.awaitShell();
    }

    @AfterAll
    static void stop() {
        if (karaf != null) karaf.stop();
        if (passed && run != null) KarafInstance.deleteTree(run);
    }

    @Test
    void sshListensOnLoopbackOnly() throws Exception {
        // /proc/net/tcp{,6}: local address:port in hex, state 0A = LISTEN
        String port = String.format("%04X", karaf.sshPort());
        List<String> listening = new java.util.ArrayList<>();
        for (String table : new String[] {"/proc/net/tcp", "/proc/net/tcp6"}) {
            for (String line : Files.readAllLines(Path.of(table))) {
                String[] f = line.trim().split("\\s+");
                if (f.length > 3 && f[3].equals("0A") && f[1].endsWith(":" + port)) listening.add(f[1]);
            }
        }
        assertFalse(listening.isEmpty(), "nothing listens on the ssh port " + karaf.sshPort());
        for (String local : listening) {
            String addr = local.substring(0, local.indexOf(':'));
            // 127.0.0.1 as IPv4 (0100007F) or as an IPv4-mapped IPv6 address (::ffff:127.0.0.1)
            assertTrue(addr.equals("0100007F") || addr.equals("0000000000000000FFFF00000100007F"),
                    "ssh listens on " + local + ", not on loopback only: " + listening);
        }
        passed = true;
    }

    @Test
    void noWellKnownPasswordAndTheAdminKeyIsTheOwnersOnly() throws Exception {
        Path key = karaf.home().resolve("etc/admin.key");
        assertTrue(Files.isRegularFile(key), "the admin key created at first start");
        assertEquals(Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE), Files.getPosixFilePermissions(key));
        String users = Files.readString(karaf.home().resolve("etc/users.properties"));
        assertFalse(users.matches("(?s).*\\nkaraf\\s*=.*"), "no karaf user:\n" + users);
        Process p = new ProcessBuilder("bin/client", "-a", Integer.toString(karaf.sshPort()), "-u", "karaf", "-p", "karaf",
                "postcopy:status").directory(karaf.home().toFile()).redirectErrorStream(true).start();
        p.getOutputStream().close();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertFalse(out.contains("ID "), "karaf/karaf logged in:\n" + out);
        assertTrue(out.contains("No more authentication methods available") || p.exitValue() != 0, out);

        // the local administrator: bin/postcopy-client, no JAVA_HOME in the environment and no warning about it
        ProcessBuilder pb = new ProcessBuilder("bin/postcopy-client", "-a", Integer.toString(karaf.sshPort()), "postcopy:status")
                .directory(karaf.home().toFile()).redirectErrorStream(true);
        pb.environment().remove("JAVA_HOME");
        Process admin = pb.start();
        try (var stdin = admin.getOutputStream()) {
            assertTrue(admin.waitFor(60, TimeUnit.SECONDS));
        }
        String adminOut = new String(admin.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, admin.exitValue(), adminOut);
        assertFalse(adminOut.contains("JAVA_HOME"), adminOut);
        passed = true;
    }

    /** From a script with stdin at end of file: the command runs to its end, and the exit status is its own. */
    @Test
    void postcopyClientRunsOneCommandFromAScriptWithItsExitStatus() throws Exception {
        for (String[] c : new String[][] {{"postcopy:blocks", "0", "Name "}, {"postcopy:block-remove none-such", "1",
                "no RAM block named \"none-such\""}}) {
            ProcessBuilder pb = new ProcessBuilder("bin/postcopy-client", "-a", Integer.toString(karaf.sshPort()), c[0])
                    .directory(karaf.home().toFile()).redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            Process p = pb.start();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), c[0]);
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(Integer.parseInt(c[1]), p.exitValue(), c[0] + ": " + out);
            assertTrue(out.contains(c[2]), c[0] + ": " + out);
        }
        passed = true;
    }

    /**
     * Issue 17: without -a, bin/postcopy-client reaches its own copy (this one's sshPort is a free port, not 8101), so
     * two copies on one host need no option.
     */
    @Test
    void postcopyClientTalksToItsOwnCopyWithoutAPortOption() throws Exception {
        assertNotEquals(8101, karaf.sshPort());
        Process p = new ProcessBuilder("bin/postcopy-client", "postcopy:blocks").directory(karaf.home().toFile())
                .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("Name "), out);
        passed = true;
    }

    /** Issue 17: output read by a script (stdout a pipe) has no escape codes, and addresses read as written. */
    @Test
    void outputToAPipeHasNoEscapeCodesAndPlainAddresses() throws Exception {
        String listen = pipe("postcopy:listen --bind 0.0.0.0 --insecure 0", 0);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("Listening on 0\\.0\\.0\\.0:(\\d+) as listen-").matcher(listen);
        assertTrue(m.find(), listen);
        String port = m.group(1);
        try {
            String status = pipe("postcopy:status", 0);
            assertTrue(status.contains("listen-" + port + " on 0.0.0.0:" + port + " (0 accepted"), status);
            assertFalse(status.contains("0:0:0:0"), status);
            // an error is what Karaf prints in red on a terminal
            String error = pipe("postcopy:block-remove none-such", 1);
            assertTrue(error.startsWith("Error executing command: postcopy:block-remove: no RAM block named"), error);
            String refused = pipe("postcopy:migrate 127.0.0.1:1", 1);
            assertTrue(refused.contains("name the blocks to migrate"), refused);
        } finally {
            pipe("postcopy:cancel listen-" + port, 0);
        }
        passed = true;
    }

    /** bin/postcopy-client CMD with stdin from /dev/null and stdout a pipe: its bytes, none of them ESC (0x1b). */
    private String pipe(String command, int exit) throws Exception {
        Process p = new ProcessBuilder("bin/postcopy-client", "-a", Integer.toString(karaf.sshPort()), command)
                .directory(karaf.home().toFile()).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        byte[] bytes = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), command);
        String out = new String(bytes, StandardCharsets.UTF_8);
        System.out.println("$ bin/postcopy-client \"" + command + "\" | ...  (exit " + p.exitValue() + ")\n" + out);
        assertEquals(exit, p.exitValue(), command + ": " + out);
        for (int i = 0; i < bytes.length; i++)
            assertTrue(bytes[i] != 0x1b, command + ": ESC at byte " + i + " of " + out);
        return out;
    }

    @Test
    void aViewerMayReadStatusButNotMigrateOrRemoveBlocks() throws Exception {
        Path key = run.resolve("viewer.key");
        Process gen = new ProcessBuilder("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", key.toString())
                .redirectErrorStream(true).start();
        assertEquals(0, gen.waitFor(), new String(gen.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        String pub = Files.readString(Path.of(key + ".pub")).split(" ")[1];
        Files.writeString(karaf.home().resolve("etc/keys.properties"), "viewer = " + pub + ",_g_:viewergroup\n",
                java.nio.file.StandardOpenOption.APPEND);
        karaf.client("postcopy:block-create sec-ram 4M");

        KarafInstance.ClientResult status = karaf.runClientAs("viewer", key, "postcopy:status", 60);
        assertEquals(0, status.exit(), status.output());
        assertTrue(status.output().contains("ID "), status.output());
        KarafInstance.ClientResult blocks = karaf.runClientAs("viewer", key, "postcopy:blocks", 60);
        assertTrue(blocks.output().contains("sec-ram"), blocks.output());
        for (String refused : new String[] {"postcopy:migrate --blocks sec-ram 127.0.0.1:9", "postcopy:block-remove sec-ram",
                "postcopy:listen 0", "postcopy:digest sec-ram x.sha256"}) {
            KarafInstance.ClientResult r = karaf.runClientAs("viewer", key, refused, 60);
            assertNotEquals(0, r.exit(), refused + ": " + r.output());
            // Karaf's ACL hides a command the session's roles do not allow
            assertTrue(r.output().contains("Command not found: ") && r.output().contains(refused.split(" ")[0]), refused + ": " + r.output());
        }
        assertTrue(karaf.client("postcopy:blocks").contains("sec-ram"), "the viewer removed nothing");
        karaf.client("postcopy:block-remove sec-ram");
        passed = true;
    }

    @Test
    void digestWritesOnlyInsideTheFilesDirectory() throws Exception {
        karaf.client("postcopy:block-create sec-digest 1M");
        String ok = karaf.client("postcopy:digest sec-digest d.sha256");
        assertTrue(ok.contains("to " + karaf.files().resolve("d.sha256")), ok);
        assertEquals(256 * 32, Files.size(karaf.files().resolve("d.sha256")));
        Path outside = run.resolve("outside.sha256");
        KarafInstance.ClientResult r = karaf.runClient("postcopy:digest sec-digest " + outside, 60);
        assertTrue(r.output().contains(outside + " is outside " + karaf.home().resolve("data/postcopy-files")), r.output());
        assertFalse(Files.exists(outside));
        karaf.client("postcopy:block-remove sec-digest");
        passed = true;
    }
}
