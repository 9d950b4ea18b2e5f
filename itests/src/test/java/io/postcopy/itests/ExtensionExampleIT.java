package io.postcopy.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.editConfigurationFilePut;

import io.postcopy.fault.BackendInfo;
import io.postcopy.fault.FaultService;
import io.postcopy.migration.IncomingListener;
import io.postcopy.migration.IncomingMigration;
import io.postcopy.migration.IncomingOptions;
import io.postcopy.migration.MigrationMode;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationService;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.OutgoingMigration;
import io.postcopy.migration.OutgoingOptions;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.testkit.Await;
import io.postcopy.testkit.SourceImage;
import io.postcopy.workload.DigestComparison;
import io.postcopy.workload.PageDigest;
import java.io.File;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import javax.inject.Inject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.OptionUtils;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;

/**
 * The extension example of docs/extending.md ({@code docs/examples/extension-example}) works as a third-party
 * bundle: installed by file path into the distribution, its {@code example} backend (ranking 50) outranks
 * {@code anon}, a local postcopy migration places every page through it and carries its
 * {@code example/state} device section to a handler, and uninstalling it unbinds the backend.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class ExtensionExampleIT {
    static final long PAGE = 4096;
    static final String BUNDLE_PROPERTY = "postcopy.example.bundle";

    @Inject
    BundleContext context;

    @Inject
    FaultService faults;

    @Inject
    MigrationService migrations;

    @Inject
    RamBlockRegistry registry;

    @Configuration
    public Option[] config() {
        String path = System.getProperty(BUNDLE_PROPERTY);
        if (path == null) throw new IllegalStateException("system property " + BUNDLE_PROPERTY + " is not set (run through failsafe)");
        File jar = new File(path);
        if (!jar.isFile())
            throw new IllegalStateException(jar + " does not exist: build docs/examples/extension-example first");
        // the tests run inside Karaf: hand the path to the container's JVM
        return OptionUtils.combine(PostcopyKaraf.withTestKit(),
                editConfigurationFilePut("etc/system.properties", BUNDLE_PROPERTY, jar.getAbsolutePath()));
    }

    @Test
    public void theExampleBundlePlacesEveryPageAndCarriesItsDeviceState() throws Exception {
        String path = System.getProperty(BUNDLE_PROPERTY);
        assertNotNull(BUNDLE_PROPERTY + " in the container", path);
        Bundle example = context.installBundle("file:" + path);
        IncomingListener listener = null;
        try {
            example.start();
            assertEquals("io.postcopy.extension-example", example.getSymbolicName());
            List<String> ranked = awaitBackends(l -> l.contains("example:50"));
            assertTrue("example above anon: " + ranked, ranked.indexOf("example:50") < ranked.indexOf("anon:0"));
            assertEquals(0, placements());

            long bytes = 24L << 20;
            RamBlock src = registry.create("ex-src", bytes, RamBlock.Backing.ANONYMOUS);
            fill(src, 11);
            listener = migrations.listen(null, IncomingOptions.defaults().withBlockPrefix("ex-dst/"));
            OutgoingMigration out = migrations.migrate(listener.address(),
                    OutgoingOptions.defaults().withBlocks("ex-src").withMode(MigrationMode.POSTCOPY));
            MigrationState outState = out.awaitCompletion(Duration.ofMinutes(2));
            assertEquals("source: " + out.failure().orElse(""), MigrationState.COMPLETED, outState);
            IncomingListener l = listener;
            Await.until("the accepted migration", Duration.ofSeconds(5), Duration.ofMillis(50), () -> !l.migrations().isEmpty());
            assertEquals("accepted migrations", 1, listener.migrations().size());
            IncomingMigration in = listener.migrations().get(0);
            MigrationState inState = in.awaitCompletion(Duration.ofMinutes(2));
            assertEquals("destination: " + in.failure().orElse(""), MigrationState.COMPLETED, inState);

            MigrationProgress sp = out.progress(), dp = in.progress();
            System.out.println("itest extension example: source " + sp + "\n  destination " + dp + "\n  backends " + faults.backends());
            assertTrue("device sections saved: " + sp, sp.deviceSections() >= 1);
            assertTrue("device sections loaded by a handler: " + dp, dp.deviceSections() >= 1);
            assertEquals("opaque sections: " + dp, 0, dp.opaqueSections());
            assertTrue("no opaque section kept", in.opaqueSections().isEmpty());
            long placed = placements();
            assertTrue("the example backend placed pages: " + placed, placed > 0);

            RamBlock dst = registry.byName("ex-dst/ex-src");
            assertNotNull("destination block", dst);
            DigestComparison c = PageDigest.compare(PageDigest.of(src), PageDigest.of(dst));
            assertEquals("pages", bytes / PAGE, c.pages());
            assertEquals("mismatched pages (first " + c.firstMismatch() + ")", 0, c.mismatched());
            assertTrue(c.equal());
        } finally {
            if (listener != null) listener.close();
            if (registry.byName("ex-dst/ex-src") != null) registry.remove("ex-dst/ex-src");
            if (registry.byName("ex-src") != null) registry.remove("ex-src");
            example.uninstall();
        }
        List<String> after = awaitBackends(l -> l.stream().noneMatch(b -> b.startsWith("example:")));
        assertTrue("anon is back for 4 KiB blocks: " + after, after.contains("anon:0"));
    }

    /** Pattern filled pages; every 7th page stays zero (sent as a ZERO record). */
    private static void fill(RamBlock block, long seed) {
        SourceImage.fill(block.hostAddress(), block.usedLength(), 0, seed);
    }

    /** The example backend's placement count, from its supported-kinds text. */
    private long placements() {
        Optional<BackendInfo> b = faults.backends().stream().filter(i -> i.name().equals("example")).findFirst();
        assertTrue("example backend bound: " + faults.backends(), b.isPresent());
        Matcher m = Pattern.compile("; (\\d+) placements$").matcher(b.get().supportedKinds());
        assertTrue(b.get().supportedKinds(), m.find());
        return Long.parseLong(m.group(1));
    }

    private List<String> awaitBackends(java.util.function.Predicate<List<String>> ok) {
        return Await.until("bound backends, highest ranking first", Duration.ofSeconds(10), Duration.ofMillis(50),
                () -> faults.backends().stream().map(b -> b.name() + ":" + b.ranking()).collect(Collectors.toList()), ok);
    }
}
