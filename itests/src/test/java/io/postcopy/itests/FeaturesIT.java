package io.postcopy.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import javax.inject.Inject;
import org.apache.karaf.features.Feature;
import org.apache.karaf.features.FeaturesService;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;

/**
 * Every postcopy feature installs on its own and uninstalls leaving no bundle behind. The test touches no
 * postcopy class (its probe must not be wired to the bundles it uninstalls).
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class FeaturesIT {

    private static final List<String> FEATURES = List.of("postcopy-core", "postcopy-hugepage",
            "postcopy-migration", "postcopy-shell", "postcopy");

    @Inject
    FeaturesService features;

    @Inject
    BundleContext context;

    @Configuration
    public Option[] config() {
        return PostcopyKaraf.distribution();
    }

    private Set<String> bundles() {
        Set<String> s = new TreeSet<>();
        for (Bundle b : context.getBundles()) s.add(b.getSymbolicName() + "/" + b.getVersion());
        return s;
    }

    private static Set<String> postcopy(Set<String> bundles) {
        Set<String> s = new TreeSet<>();
        for (String b : bundles) if (b.startsWith("io.postcopy.")) s.add(b);
        return s;
    }

    @Test
    public void everyFeatureInstallsAndUninstallsCleanly() throws Exception {
        EnumSet<FeaturesService.Option> opts = EnumSet.noneOf(FeaturesService.Option.class);
        assertTrue(features.isInstalled(features.getFeature("postcopy")));
        Set<String> booted = bundles();
        features.uninstallFeature("postcopy", opts);
        Set<String> base = bundles();
        assertEquals("no postcopy bundle after uninstalling the boot feature", Set.of(), postcopy(base));
        for (String name : FEATURES) {
            Feature f = features.getFeature(name);
            features.installFeature(f, opts);
            Set<String> with = bundles();
            assertTrue(name + " brings postcopy bundles: " + with, !postcopy(with).isEmpty());
            for (Bundle b : context.getBundles())
                if (b.getSymbolicName().startsWith("io.postcopy."))
                    assertEquals(name + ": " + b.getSymbolicName() + " active", Bundle.ACTIVE, b.getState());
            System.out.println(name + ": " + postcopy(with));
            features.uninstallFeature(name, f.getVersion(), opts);
            assertEquals(name + " left bundles behind", base, bundles());
        }
        features.installFeature("postcopy", opts);
        assertEquals("postcopy reinstalled", postcopy(booted), postcopy(bundles()));
    }
}
