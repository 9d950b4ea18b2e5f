package io.postcopy.itests;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import io.postcopy.codec.Command;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.SectionType;
import io.postcopy.codec.StreamEncoder;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.uffd.NativeMemory;
import java.io.ByteArrayOutputStream;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.inject.Inject;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.api.console.SessionFactory;
import org.junit.After;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Every {@code postcopy:*} command of the shell bundle, run through Karaf's own {@link SessionFactory} as a user
 * would type it, with its output checked: the distribution ships the `postcopy-shell` feature (through the
 * `shell` condition of `postcopy`), so the commands are there without installing anything.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class ShellCommandsIT {
    /** The subject a shell user with the admin role has (Karaf's JAAS principals). */
    private static final javax.security.auth.Subject ADMIN = new javax.security.auth.Subject(true,
            java.util.Set.of(new org.apache.karaf.jaas.boot.principal.UserPrincipal("it-admin"),
                    new org.apache.karaf.jaas.boot.principal.RolePrincipal("admin"),
                    new org.apache.karaf.jaas.boot.principal.RolePrincipal("viewer")),
            java.util.Set.of(), java.util.Set.of());


    private static final int PAGE = 4096;

    @Inject
    SessionFactory sessions;

    /** Injected so the tests can look behind the commands (and wait for the registry). */
    @Inject
    RamBlockRegistry registry;

    @Configuration
    public Option[] config() {
        return PostcopyKaraf.distribution();
    }

    @After
    public void removeTestBlocks() {
        for (RamBlock b : registry.blocks()) if (b.idstr().startsWith("it-")) registry.remove(b.idstr());
    }

    /** The output of one command line, or the exception it ended with. */
    record Result(String out, String err, Throwable failure) {}

    private Result run(String commandLine) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try (Session session = sessions.create(System.in, o, e)) {
            // as an administrator would: Karaf's command ACLs (etc/org.apache.karaf.command.acl.postcopy.cfg) hide the
            // postcopy commands from a session without the admin role
            Future<Object> f = executor.submit(() -> javax.security.auth.Subject.doAs(ADMIN,
                    (java.security.PrivilegedExceptionAction<Object>) () -> session.execute(commandLine)));
            Throwable failure = null;
            try {
                f.get(120, TimeUnit.SECONDS);
            } catch (ExecutionException x) {
                failure = x.getCause() instanceof java.security.PrivilegedActionException pa ? pa.getCause() : x.getCause();
            }
            o.flush();
            e.flush();
            return new Result(out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8), failure);
        } finally {
            executor.shutdownNow();
        }
    }

    private String ok(String commandLine) throws Exception {
        Result r = run(commandLine);
        if (r.failure() != null) throw new AssertionError(commandLine + " failed: " + r.failure(), r.failure());
        System.out.println("karaf@root()> " + commandLine + "\n" + r.out());
        return r.out();
    }

    /** {@link #ok}, for tabular and report output, which must fit 100 columns (JSON and paths may not). */
    private String narrow(String commandLine) throws Exception {
        String out = ok(commandLine);
        assertNoWideLines(commandLine, out);
        return out;
    }

    private static void assertNoWideLines(String commandLine, String out) {
        for (String line : out.split("\n"))
            assertTrue(commandLine + ": line wider than 100 columns: " + line, line.length() <= 100);
    }

    /** A user error: one line, naming what was wrong, no stack trace. */
    private String error(String commandLine) throws Exception {
        Result r = run(commandLine);
        assertNotNull(commandLine + " should fail, printed: " + r.out(), r.failure());
        assertEquals("Karaf prints a CommandException as one line, without a trace",
                "CommandException", r.failure().getClass().getSimpleName());
        String message = r.failure().getMessage();
        assertFalse("one line: " + message, message.contains("\n"));
        return message;
    }

    @Test
    public void checkReportsEachCheckAndTheSummary() throws Exception {
        String out = narrow("postcopy:check");
        assertTrue(out, out.startsWith("Check ") && out.matches("(?s)Check\\s+\\| Result \\| Required \\| Detail\n.*"));
        assertTrue(out, out.matches("(?s).*\\nAPI handshake\\s+\\| PASS .*"));
        assertTrue(out, out.matches("(?s).*\\nanonymous memory\\s+\\| PASS .*"));
        assertTrue(out, out.contains("Postcopy is supported on this host (target page 4K, host page 4K"));
        assertTrue(out, out.contains("Features: ") && out.contains("MISSING_HUGETLBFS"));
        assertTrue(out, out.matches("(?s).*ioctls \\(anonymous\\): .*COPY.*ZEROPAGE.*"));

        String big = narrow("postcopy:check --page-size 64K");
        assertTrue(big, big.matches("(?s).*\\ntarget page size\\s+\\| FAIL .*"));
        assertTrue(big, big.contains("Fixes:") && big.contains("must be a power of two no larger than the host page size"));
        assertTrue(big, big.contains("Postcopy is NOT supported"));
    }

    @Test
    public void blockCreateListRemove() throws Exception {
        String created = ok("postcopy:block-create it-ram 256M");
        assertTrue(created, created.startsWith("Created block it-ram: 256M (268435456 bytes), anonymous, 4K pages, at 0x"));
        ok("postcopy:block-create --backing memfd it-shm 4096K");

        String list = narrow("postcopy:blocks");
        RamBlock ram = registry.byName("it-ram");
        assertNotNull(ram);
        assertTrue(list, list.matches("(?s).*\\nit-ram\\s+\\|\\s+256M \\|\\s+4K \\| anonymous \\| "
                + String.format("0x%016x", ram.hostAddress()) + " \\|\\s+- \\| -\\n.*"));
        assertTrue(list, list.matches("(?s).*\\nit-shm\\s+\\|\\s+4M \\|\\s+4K \\| memfd .*"));

        String removed = ok("postcopy:block-remove it-shm");
        assertEquals("Removed block it-shm (4M)\n", removed);
        assertNull(registry.byName("it-shm"));
        assertFalse(narrow("postcopy:blocks").contains("it-shm"));
    }

    @Test
    public void badInputIsOneClearLine() throws Exception {
        assertEquals("postcopy:block-create: SIZE \"12X\" is not a size; expected digits and an optional unit K, M, G or T"
                + " (binary), like 256M, 1G, 4096K or 8192", error("postcopy:block-create it-bad 12X"));
        assertTrue(error("postcopy:block-create it-bad 1.5G").contains("\"1.5G\" is not a size"));
        assertEquals("postcopy:block-create: SIZE 4097 (4097 bytes) is not a multiple of the anonymous page size 4K",
                error("postcopy:block-create it-bad 4097"));
        assertEquals("postcopy:block-create: backing \"tmpfs\" is not one of anon, memfd, hugetlb",
                error("postcopy:block-create --backing tmpfs it-bad 1M"));
        // issue 17: a request the kernel refuses says what the host has and which limit refused it
        String huge = error("postcopy:block-create it-bad 100T");
        assertTrue(huge, huge.startsWith("postcopy:block-create: not enough memory for block \"it-bad\" of 100 TiB (anonymous): "
                + "the kernel refused the mapping (ENOMEM). This host: MemAvailable "));
        assertTrue(huge, huge.contains("; vm.overcommit_memory=") && huge.contains("; CommitLimit ") && huge.contains(" Limit: "));
        assertNull(registry.byName("it-bad"));
        assertEquals("postcopy:block-remove: no RAM block named \"it-none\" (postcopy:blocks lists them)",
                error("postcopy:block-remove it-none"));
        assertTrue(error("postcopy:inspect /nonexistent/stream").contains("/nonexistent/stream is outside "));
        assertTrue(error("postcopy:inspect no-such.stream").contains("no such file: " + filesDir().resolve("no-such.stream")));
    }

    @Test
    public void digestWritesThirtyTwoBytesPerPageMatchingTheContent() throws Exception {
        int pages = 64;
        ok("postcopy:block-create it-digest " + (pages * PAGE / 1024) + "K");
        RamBlock block = registry.byName("it-digest");
        // Known content: random pages, every fifth left zero; written through a native copy (the project's rule).
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        ByteArrayOutputStream expected = new ByteArrayOutputStream();
        Random random = new Random(42);
        long buf = NativeMemory.allocate(PAGE);
        try {
            for (int p = 0; p < pages; p++) {
                byte[] page = new byte[PAGE];
                if (p % 5 != 0) random.nextBytes(page);
                NativeMemory.put(page, 0, PAGE, buf);
                NativeMemory.nativeCopy(buf, block.hostAddress() + (long) p * PAGE, PAGE);
                expected.write(sha.digest(page));
            }
        } finally {
            NativeMemory.free(buf);
        }
        // a relative name goes into the files directory; a path outside it is refused, naming the directory
        Path file = filesDir().resolve("it-digest.sha256");
        try {
            String out = ok("postcopy:digest it-digest it-digest.sha256");
            assertEquals("Wrote 64 page digests (2048 bytes) of block it-digest to " + file + "\n", out);
            String outside = error("postcopy:digest it-digest /tmp/it-digest.sha256");
            assertTrue(outside, outside.contains("/tmp/it-digest.sha256 is outside " + filesDir()
                    + ", the directory where postcopy:digest and postcopy:inspect read and write"));
            assertFalse(Files.exists(Path.of("/tmp/it-digest.sha256")));
            assertTrue(error("postcopy:inspect /etc/passwd").contains("/etc/passwd is outside " + filesDir()));
            assertTrue(error("postcopy:digest it-digest ../escape.sha256").contains("is outside"));
            byte[] got = Files.readAllBytes(file);
            assertEquals(32 * pages, got.length);
            assertArrayEquals(expected.toByteArray(), got);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    public void backendsListsAnon() throws Exception {
        String out = narrow("postcopy:backends");
        assertTrue(out, out.matches("(?s).*\\| Ranking \\| Supported kinds.*"));
        assertTrue(out, out.matches("(?s).*\\nanon\\s+\\|\\s+0 \\| anonymous, memfd, adopted.*"));
        String one = narrow("postcopy:backends anon");
        assertTrue(one, one.contains("\nanon "));
        assertTrue(error("postcopy:backends nosuch").startsWith("postcopy:backends: no placement backend named \"nosuch\""));
    }

    @Test
    public void inspectSummaryOfAStreamMadeHere() throws Exception {
        RamBlockInfo ram = new RamBlockInfo(0, "pc.ram", 64 * PAGE, PAGE);
        Files.createDirectories(filesDir());
        Path file = Files.createTempFile(filesDir(), "postcopy-inspect", ".stream");
        try (FileOutputStream fos = new FileOutputStream(file.toFile())) {
            StreamEncoder e = new StreamEncoder(Channels.newChannel(fos));
            e.writeHeader();
            e.writeConfiguration("pc-i440fx-7.2");
            e.writeCommand(new Command.OpenReturnPath());
            e.writeCommand(new Command.Ping(1));
            e.writeSectionStart(SectionType.START, 0, "ram", 0, 4);
            e.writeMemSize(List.of(ram), true, PAGE);
            e.writeEos();
            e.writeFooter(0);
            e.writeSectionPart(SectionType.PART, 0);
            byte[] page = new byte[PAGE];
            for (int i = 0; i < 5; i++) {
                new Random(i).nextBytes(page);
                e.writePage(ram, (long) i * PAGE, ByteBuffer.wrap(page), 0);
            }
            e.writeZero(ram, 10L * PAGE, 0);
            e.writeZero(ram, 11L * PAGE, 0);
            e.writeEos();
            e.writeFooter(0);
            e.writeSectionPart(SectionType.END, 0);
            e.writeEos();
            e.writeFooter(0);
            e.writeEof();
            e.flush();
        }
        try {
            String json = ok("postcopy:inspect --summary " + file).trim();
            assertTrue(json, json.startsWith("{\"bytes\":" + Files.size(file) + ",\"configuration\":\"pc-i440fx-7.2\""));
            assertTrue(json, json.contains("\"commands\":{\"OPEN_RETURN_PATH\":1,\"PING\":1}"));
            assertTrue(json, json.contains("\"sections\":{\"START\":1,\"PART\":1,\"END\":1,\"FULL\":0,\"EOF\":1}"));
            assertTrue(json, json.contains("\"ram\":{\"PAGE\":5,\"ZERO\":2,\"EOS\":3}"));
            assertTrue(json, json.contains("{\"name\":\"pc.ram\",\"used_length\":262144}"));

            String listing = ok("postcopy:inspect " + file);
            assertTrue(listing, listing.contains("HEADER QEVM version=3"));
            assertTrue(listing, listing.contains("MEM_SIZE blocks=1 pc.ram:0x40000"));
            assertTrue(listing, listing.contains("EOS pages=5 zero=2"));

            // A truncated copy: the inspector's own one-line error, naming the offset.
            Path cut = Files.createTempFile(filesDir(), "postcopy-inspect", ".cut");
            try {
                byte[] whole = Files.readAllBytes(file);
                Files.write(cut, java.util.Arrays.copyOf(whole, whole.length - 100));
                String message = error("postcopy:inspect --summary " + cut);
                assertTrue(message, message.startsWith("postcopy:inspect: inspect: " + cut + ": "));
            } finally {
                Files.deleteIfExists(cut);
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    public void workloadStartStopVerify() throws Exception {
        ok("postcopy:block-create it-work 8M");
        String filled = ok("postcopy:workload --seed 7 fill it-work");
        assertEquals("Filled block it-work: 2048 pages with content seed 7\n", filled);
        String started = ok("postcopy:workload --threads 2 --pattern hotset --write-fraction 0.5 --check-reads start it-work");
        assertTrue(started, started.startsWith("Started workload on block it-work: 2 threads, hotset, write fraction 0.5"));
        Thread.sleep(300);
        String list = narrow("postcopy:workload list");
        // what runs, on which block, for whom (- : by hand), since when, reads so far
        assertTrue(list, list.matches("(?s).*\\nit-work\\s+\\| - +\\| running \\| \\d\\d:\\d\\d:\\d\\d \\|\\s+2 \\| hotset +\\| +[1-9]\\d* .*"));
        String verified = narrow("postcopy:workload verify it-work");
        assertTrue(verified, verified.startsWith("OK block it-work: 2048 pages, 0 zero, "));
        assertTrue(verified, verified.endsWith(", 0 mismatched\n"));
        String stopped = narrow("postcopy:workload stop it-work");
        assertTrue(stopped, stopped.matches("(?s)Stopped workload on block it-work: [1-9][0-9]* reads, [1-9][0-9]* writes, [0-9]+"
                + " pages touched\nStalls: [0-9]+ over 20\\.0 us; read mismatches: 0\nAccess latency: p50 .*"));
        assertTrue(error("postcopy:workload stop it-work").endsWith("no workload on block \"it-work\" (postcopy:workload list shows them)"));
        // stop --all: every workload, each with its statistics
        ok("postcopy:block-create it-work2 4M");
        ok("postcopy:workload start it-work");
        ok("postcopy:workload start it-work2");
        String all = narrow("postcopy:workload stop --all");
        assertTrue(all, all.startsWith("Stopped workload on block it-work: ") && all.contains("\nStopped workload on block it-work2: "));
        assertTrue(narrow("postcopy:workload list"), narrow("postcopy:workload list").contains("no workloads"));
        assertTrue(error("postcopy:workload --all stop it-work").endsWith("stop takes a BLOCK or --all, not both"));
        for (Thread t : Thread.getAllStackTraces().keySet())
            assertFalse(t.getName(), t.getName().startsWith("workload-it-work"));
        ok("postcopy:block-remove it-work2");
        assertTrue(error("postcopy:workload jump it-work").contains("is not one of start, stop, verify, fill, list"));
    }

    @Test
    public void everyCommandIsRegisteredWithItsDescription() throws Exception {
        String help = ok("help postcopy");
        for (String c : new String[] {"check", "blocks", "block-create", "block-remove", "digest", "backends",
                "inspect", "workload"}) {
            assertTrue("postcopy:" + c + " in\n" + help, help.contains("postcopy:" + c));
        }
        if (help.contains("Exception")) fail(help);
    }

    /** Where postcopy:digest and postcopy:inspect read and write (etc/custom.system.properties: postcopy.files.dir). */
    private static Path filesDir() throws java.io.IOException {
        String d = System.getProperty("postcopy.files.dir");
        Path p = Path.of(d != null && !d.isBlank() ? d : System.getProperty("karaf.data") + "/postcopy-files");
        Files.createDirectories(p);
        return p.toRealPath();
    }
}
