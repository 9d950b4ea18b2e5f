package io.postcopy.itests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.postcopy.testkit.Await;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A migration between two Karaf processes: the distribution built next door ({@code postcopy.distribution})
 * is unpacked twice under {@code target/two-instances/}, each copy gets its own free ports (ssh, RMI registry,
 * RMI server, JMXMP), both are started with {@code bin/start} and driven through {@code bin/client}, exactly as
 * the README's "Migrate between two machines" does: B listens ({@code postcopy:listen --prefix dst/ --workload
 * uniform 0}), A creates and fills a 128 MiB block and migrates it (2 s of precopy while a writing workload
 * runs, then postcopy), both report COMPLETED, and {@code postcopy:digest} of the source block on A and of
 * {@code dst/} + the block on B (SHA-256 of each 4 KiB page) are compared byte for byte. Both instances are
 * stopped with {@code bin/stop}, killed by their {@code karaf.pid} if that fails. The instance handling
 * (unpack, ports, start, client, stop) is {@link KarafInstance}'s.
 */
@org.junit.jupiter.api.TestMethodOrder(org.junit.jupiter.api.MethodOrderer.OrderAnnotation.class)
class TwoInstancesIT {
    private static final String BLOCK = "two-ram";
    private static final int PAGES = 32768; // 128 MiB of 4 KiB pages
    private static final long CLIENT_TIMEOUT_S = KarafInstance.CLIENT_TIMEOUT_S;

    private static final Path ROOT = Path.of("target", "two-instances").toAbsolutePath();
    private static KarafInstance a;
    private static KarafInstance b;
    private static Path run;
    private static volatile boolean passed;

    @BeforeAll
    static void startBothInstances() throws Exception {
        File archive = KarafInstance.distribution();
        Files.createDirectories(ROOT);
        run = Files.createTempDirectory(ROOT, "run-");
        Set<Integer> taken = new HashSet<>();
        a = KarafInstance.unpack(archive, run.resolve("a"), "A", taken);
        b = KarafInstance.unpack(archive, run.resolve("b"), "B", taken);
        for (KarafInstance i : List.of(a, b)) i.start();
        for (KarafInstance i : List.of(a, b)) i.awaitShell();
    }

    @AfterAll
    static void stopBothInstances() {
        for (KarafInstance i : new KarafInstance[] {a, b}) {
            if (i != null) i.stop();
        }
        if (passed && run != null) { // a failed run keeps its folders (karaf.log, start.out) for the diagnosis
            KarafInstance.deleteTree(run);
        }
    }

    /**
     * Issue 12 between two Karaf processes: a pure postcopy migration of 128 MiB at 8 MiB/s, cut on purpose from the source
     * ({@code postcopy:pause}); both sides POSTCOPY_PAUSED; {@code postcopy:resume} on the source; both COMPLETED and
     * every page of B's block equal to the seed A filled it with.
     */
    @Test
    @org.junit.jupiter.api.Order(2)
    void aCutBetweenTwoKarafProcessesIsResumed() throws Exception {
        String l = b.client("postcopy:listen --prefix cut/ 0");
        int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));
        try {
            a.client("postcopy:block-create cut-ram 128M");
            a.client("postcopy:workload --seed 5 fill cut-ram");
            String out = group("Started migration (out-\\d+) to ",
                    a.client("postcopy:migrate --postcopy-now --max-bandwidth 8M --blocks cut-ram 127.0.0.1:" + port));
            Await.until(out + " in POSTCOPY on A", Duration.ofSeconds(30), Duration.ofMillis(100),
                    () -> a.client("postcopy:status").matches("(?s).*\\n" + out + " +\\| out \\| \\S+ +\\| POSTCOPY .*"));
            String paused = a.client("postcopy:pause " + out);
            assertTrue(paused.contains("Migration " + out + ": POSTCOPY_PAUSED"), paused);
            Pattern pausedIn = Pattern.compile("\\n(in-\\d+) +\\| in  \\| \\S+ +\\| POSTCOPY_PAUSED");
            String in = Await.until("B paused too", Duration.ofSeconds(20), Duration.ofMillis(100), () -> {
                Matcher mm = pausedIn.matcher(b.client("postcopy:status"));
                return mm.find() ? mm.group(1) : null;
            }, java.util.Objects::nonNull);
            String resumed = a.client("postcopy:resume " + out + " 127.0.0.1:" + port);
            assertTrue(resumed.contains("Migration " + out + ": resumed to 127.0.0.1:" + port), resumed);
            assertTrue(a.client("postcopy:status --watch --interval 200ms " + out).contains("): COMPLETED"));
            assertTrue(b.client("postcopy:status --watch --interval 200ms " + in).contains("): COMPLETED"));
            String v = b.client("postcopy:workload --seed 5 verify cut/cut-ram");
            assertTrue(v.contains("OK block cut/cut-ram: 32768 pages, 0 zero, 32768 filled, 0 written, 0 mismatched"), v);
        } finally {
            b.client("postcopy:cancel listen-" + port);
        }
        a.client("postcopy:block-remove cut-ram");
        b.client("postcopy:block-remove cut/cut-ram");
    }

    @Test
    @org.junit.jupiter.api.Order(1)     // it takes the first COMPLETED incoming migration on B as its own
    void migrationBetweenTwoKarafProcessesIsIdenticalPageByPage() throws Exception {
        long t0 = System.nanoTime();
        // B: the destination
        String l = b.client("postcopy:listen --prefix dst/ --workload uniform 0");
        int port = Integer.parseInt(group("Listening on 127\\.0\\.0\\.1:(\\d+) as listen-", l));

        // A: the source
        String c = a.client("postcopy:block-create " + BLOCK + " 128M");
        assertTrue(c.contains("Created block " + BLOCK + ": 128M (134217728 bytes), anonymous"), c);
        String f = a.client("postcopy:workload --seed 11 fill " + BLOCK);
        assertTrue(f.contains("Filled block " + BLOCK + ": " + PAGES + " pages with content seed 11"), f);
        String m = a.client("postcopy:migrate --postcopy-after 2s --workload uniform --blocks " + BLOCK
                + " 127.0.0.1:" + port);
        String out = group("Started migration (out-\\d+) to 127\\.0\\.0\\.1:" + port, m);
        assertTrue(m.contains("1 block, 128 MiB, hybrid, postcopy after at most 2s"), m);

        // A follows it to the end (bounded by the client's timeout)
        String watch = a.client("postcopy:status --watch --interval 500ms " + out);
        assertTrue(watch.matches("(?s).*Migration  " + out + " \\(source, to 127\\.0\\.0\\.1:" + port + ", peer in-\\d+\\): COMPLETED.*"), watch);
        assertTrue(watch.contains("(" + PAGES + " of " + PAGES + " pages)"), watch);

        // A's digest runs meanwhile (its guest stays paused from the switch, so this is its memory at the switch)
        Path digestA = a.files().resolve("source.sha256");
        CompletableFuture<String> sourceDigest = CompletableFuture.supplyAsync(() -> {
            try {
                return a.client("postcopy:digest " + BLOCK + " " + digestA);
            } catch (Exception | AssertionError e) {
                throw new CompletionException(e);
            }
        });

        // B: its incoming migration completed too (polled, bounded)
        String in = null;
        String table = "";
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            table = b.client("postcopy:status");
            Matcher done = Pattern.compile("\\n(in-\\d+) +\\| in  \\| 127\\.0\\.0\\.1:\\d+ +\\| COMPLETED").matcher(table);
            if (done.find()) {
                in = done.group(1);
                break;
            }
            assertTrue(!table.matches("(?s).*\\| (FAILED|CANCELLED) .*"), "B's migration ended badly:\n" + table);
            Thread.sleep(500);
        }
        if (in == null) fail("no COMPLETED incoming migration on B within 30 s:\n" + table);
        String detail = b.client("postcopy:status " + in);
        assertTrue(detail.contains("(" + PAGES + " of " + PAGES + " pages)"), detail);

        // page by page: SHA-256 of every 4 KiB page, on each side, compared here
        Path digestB = b.files().resolve("destination.sha256");
        String db = b.client("postcopy:digest dst/" + BLOCK + " " + digestB);
        String da;
        try {
            da = sourceDigest.get(CLIENT_TIMEOUT_S + 10, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof AssertionError x ? x : new AssertionError("digest on A", e.getCause());
        }
        assertTrue(da.contains("Wrote " + PAGES + " page digests (" + PAGES * 32 + " bytes) of block " + BLOCK), da);
        assertTrue(db.contains("Wrote " + PAGES + " page digests (" + PAGES * 32 + " bytes) of block dst/" + BLOCK), db);
        byte[] source = Files.readAllBytes(digestA);
        byte[] destination = Files.readAllBytes(digestB);
        assertEquals(PAGES * 32, source.length, "source digest length");
        assertEquals(PAGES * 32, destination.length, "destination digest length");
        int mismatched = 0;
        int first = -1;
        for (int page = 0; page < PAGES; page++) {
            for (int k = 0; k < 32; k++) {
                if (source[page * 32 + k] != destination[page * 32 + k]) {
                    if (first < 0) first = page;
                    mismatched++;
                    break;
                }
            }
        }
        assertEquals(0, mismatched, "pages differing between A and B (first: page " + first + ")");
        assertArrayEquals(source, destination);

        // the destination's content is also a consistent workload image
        String v = b.client("postcopy:workload verify dst/" + BLOCK);
        assertTrue(v.contains("OK block dst/" + BLOCK + ": " + PAGES + " pages, ") && v.contains(" 0 mismatched"), v);
        System.out.printf("two instances: %s -> %s, %d pages identical, test body %.1f s%n", out, in, PAGES,
                (System.nanoTime() - t0) / 1e9);
        passed = true;
    }

    private static String group(String regex, String text) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertTrue(m.find(), "no match for " + regex + " in:\n" + text);
        return m.group(1);
    }
}
