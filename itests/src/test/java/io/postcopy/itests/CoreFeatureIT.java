package io.postcopy.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import io.postcopy.policy.BalloonDevice;
import io.postcopy.policy.BalloonInhibitor;
import io.postcopy.policy.HugePagePolicy;
import io.postcopy.policy.MemoryLockPolicy;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockListener;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.uffd.HostSupportProbe;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.HostSupportReport;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import javax.inject.Inject;
import org.apache.karaf.features.BundleInfo;
import org.apache.karaf.features.Dependency;
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
import org.osgi.framework.wiring.BundleWire;
import org.osgi.framework.wiring.BundleWiring;
import org.osgi.framework.ServiceRegistration;
import org.osgi.framework.wiring.BundleRevision;
import org.osgi.service.component.runtime.ServiceComponentRuntime;
import org.osgi.service.component.runtime.dto.ComponentConfigurationDTO;
import org.osgi.service.component.runtime.dto.ComponentDescriptionDTO;

/** The distribution boots the `postcopy` feature: every bundle up, every component satisfied, the host supported. */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class CoreFeatureIT {

    @Inject
    BundleContext context;

    @Inject
    FeaturesService features;

    @Inject
    ServiceComponentRuntime scr;

    @Inject
    HostSupportProbe probe;

    @Inject
    RamBlockRegistry registry;

    @Inject
    BalloonInhibitor balloon;

    /** Injected so that the test waits for (and fails without) the policy services. */
    @Inject
    MemoryLockPolicy mlock;

    @Inject
    HugePagePolicy thp;

    @Configuration
    public Option[] config() {
        return PostcopyKaraf.distribution();
    }

    @Test
    public void postcopyFeaturesAreInstalled() throws Exception {
        for (String name : List.of("postcopy", "postcopy-core")) {
            Feature f = features.getFeature(name);
            assertNotNull("feature " + name + " is known", f);
            assertTrue("feature " + name + " is installed", features.isInstalled(f));
        }
    }

    @Test
    public void everyBundleOfTheFeatureIsActive() throws Exception {
        List<String> wrong = new ArrayList<>();
        Set<String> locations = bundleLocations(features.getFeature("postcopy"), new LinkedHashSet<>());
        assertTrue("the feature has bundles: " + locations, locations.size() >= 10);
        for (String location : locations) {
            Bundle b = context.getBundle(location);
            if (b == null) {
                wrong.add(location + " not installed");
            } else if (!upAsItShouldBe(b)) {
                wrong.add(location + " " + b.getSymbolicName() + " is " + stateName(b.getState()));
            }
        }
        assertEquals("bundles of the postcopy feature not up", List.of(), wrong);

        // The jffi native fragment attached to its host (the wrapped jffi jar's symbolic name must match).
        Bundle jffi = bySymbolicName("com.github.jnr.jffi");
        Bundle natives = bySymbolicName("com.github.jnr.jffi.native");
        assertNotNull("wrapped jffi present", jffi);
        assertNotNull("jffi native fragment present", natives);
        assertEquals(Bundle.RESOLVED, natives.getState());
        assertEquals(Bundle.ACTIVE, jffi.getState());
    }

    /** The uffd bundle's osgi.native requirement is wired to the framework's own description of this host. */
    @Test
    public void theUffdBundleRequiresLinuxOnX8664AndTheFrameworkProvidesIt() {
        Bundle uffd = bySymbolicName("io.postcopy.uffd");
        assertNotNull("uffd bundle present", uffd);
        List<BundleWire> wires = uffd.adapt(BundleWiring.class).getRequiredWires("osgi.native");
        assertEquals("one osgi.native wire: " + wires, 1, wires.size());
        BundleWire w = wires.get(0);
        assertTrue(w.getRequirement().getDirectives().get("filter"),
                w.getRequirement().getDirectives().get("filter").contains("osgi.native.processor~=x86-64"));
        assertEquals("wired to the system bundle", 0L, w.getProvider().getBundle().getBundleId());
    }

    @Test
    public void everyBundleInTheContainerIsUp() {
        List<String> wrong = new ArrayList<>();
        for (Bundle b : context.getBundles()) {
            if (!upAsItShouldBe(b)) wrong.add(b.getBundleId() + " " + b.getSymbolicName() + " is " + stateName(b.getState()));
        }
        assertEquals("bundles not up", List.of(), wrong);
    }

    @Test
    public void everyPostcopyComponentIsSatisfied() {
        Bundle[] ours = ourBundles();
        assertTrue("our bundles are installed", ours.length >= 1);
        Collection<ComponentDescriptionDTO> descriptions = scr.getComponentDescriptionDTOs(ours);
        Set<String> names = descriptions.stream().map(d -> d.name).collect(Collectors.toSet());
        for (String component : List.of("io.postcopy.uffd.internal.HostSupportComponent",
                "io.postcopy.ramblock.internal.RamBlockRegistryComponent",
                "io.postcopy.policy.internal.BalloonInhibitorComponent",
                "io.postcopy.policy.internal.MemoryLockPolicyComponent",
                "io.postcopy.policy.internal.HugePagePolicyComponent")) {
            assertTrue(component + " is declared: " + names, names.contains(component));
        }

        List<String> wrong = new ArrayList<>();
        for (ComponentDescriptionDTO d : descriptions) {
            if (!scr.isComponentEnabled(d)) {
                wrong.add(d.name + " disabled");
                continue;
            }
            Collection<ComponentConfigurationDTO> configurations = scr.getComponentConfigurationDTOs(d);
            if (configurations.isEmpty()) wrong.add(d.name + " has no configuration (configuration policy REQUIRE without one?)");
            for (ComponentConfigurationDTO c : configurations) {
                if (c.state == ComponentConfigurationDTO.UNSATISFIED_CONFIGURATION
                        || c.state == ComponentConfigurationDTO.UNSATISFIED_REFERENCE
                        || c.state == ComponentConfigurationDTO.FAILED_ACTIVATION) {
                    wrong.add(d.name + " is " + componentState(c.state)
                            + (c.failure != null ? ": " + c.failure : "")
                            + (c.unsatisfiedReferences.length > 0 ? ", unsatisfied references "
                            + java.util.Arrays.stream(c.unsatisfiedReferences).map(r -> r.name + " " + r.target).collect(Collectors.toList()) : ""));
                }
            }
        }
        assertEquals("components not satisfied", List.of(), wrong);
    }

    @Test
    public void hostProbeReportsSupport() {
        HostSupportReport report = probe.probe();
        assertTrue("postcopy supported here: " + report.failures() + " " + report.checks(), report.supported());
        for (String check : List.of("target page size", "API handshake", "anonymous memory")) {
            HostSupportReport.Check c = report.checks().stream().filter(x -> x.name().equals(check)).findFirst()
                    .orElseThrow(() -> new AssertionError("no check named " + check + " in " + report.checks()));
            assertTrue(check + ": " + c.detail(), c.passed());
            assertTrue(check + " is mandatory", c.mandatory());
        }
        boolean opened = report.checks().stream()
                .anyMatch(c -> (c.name().equals("userfaultfd syscall") || c.name().equals("/dev/userfaultfd")) && c.passed());
        assertTrue("a userfaultfd was opened by the syscall or /dev/userfaultfd: " + report.checks(), opened);
        assertFalse("the kernel offers features", report.features().isEmpty());
        assertTrue("anonymous backing has ioctls", report.ioctlsByBacking().containsKey("anonymous"));
        assertEquals(4096, report.targetPageSize());
        // A target page larger than the host's is refused, by name.
        HostSupportReport big = probe.probe(2 * report.hostPageSize());
        assertFalse(big.supported());
        assertTrue(big.failures(), big.failures().contains("target page size"));
    }

    @Test
    public void ramBlockRegistryCreatesBlocksAndFindsThemByHostAddress() {
        List<String> events = new CopyOnWriteArrayList<>();
        RamBlockListener listener = new RamBlockListener() {
            @Override public void blockAdded(RamBlock block) { events.add("+" + block.idstr()); }
            @Override public void blockRemoved(RamBlock block) { events.add("-" + block.idstr()); }
        };
        // whiteboard: the registry binds listener services dynamically
        ServiceRegistration<RamBlockListener> reg = context.registerService(RamBlockListener.class, listener, null);
        try {
            long page = NativeMemory.pageSize();
            RamBlock a = registry.create("itest.a", 64 * page, RamBlock.Backing.ANONYMOUS);
            RamBlock b = registry.create("itest.b", 16 * page, RamBlock.Backing.MEMFD);
            try {
                assertEquals(a, registry.byName("itest.a"));
                assertEquals(a, registry.blockOf(a.hostAddress()));
                assertEquals(a, registry.blockOf(a.hostAddress() + 5 * page + 17));
                assertEquals(5 * page + 17, a.offsetOf(a.hostAddress() + 5 * page + 17));
                assertEquals(a, registry.blockOf(a.hostAddress() + a.maxLength() - 1));
                assertEquals(b, registry.blockOf(b.hostAddress() + 3 * page));
                RamBlock past = registry.blockOf(a.hostAddress() + a.maxLength());
                assertTrue("the byte after a is not in a", past != a);
                assertTrue("blocks in offset order", registry.blocks().indexOf(a) < registry.blocks().indexOf(b));
                assertTrue("offsets do not overlap", b.offset() >= a.offset() + a.maxLength());
                // the memory is real and zeroed
                assertEquals(0L, NativeMemory.getLong(a.hostAddress() + 7 * page));
                NativeMemory.putLong(a.hostAddress() + 7 * page, 0x1234_5678L);
                assertEquals(0x1234_5678L, NativeMemory.getLong(a.hostAddress() + 7 * page));
            } finally {
                registry.remove("itest.b");
                registry.remove("itest.a");
            }
            assertEquals(null, registry.byName("itest.a"));
            assertEquals(null, registry.blockOf(a.hostAddress()));
            assertEquals(List.of("+itest.a", "+itest.b", "-itest.b", "-itest.a"),
                    events.stream().filter(e -> e.contains("itest.")).collect(Collectors.toList()));
        } finally {
            reg.unregister();
        }
    }

    @Test
    public void balloonInhibitorCountsAndTellsTheDevices() {
        AtomicInteger forbidden = new AtomicInteger();
        AtomicInteger allowed = new AtomicInteger();
        BalloonDevice device = new BalloonDevice() {
            @Override public void inflationForbidden() { forbidden.incrementAndGet(); }
            @Override public void inflationAllowed() { allowed.incrementAndGet(); }
        };
        assertEquals("nothing inhibited at start", 0, balloon.count());
        ServiceRegistration<BalloonDevice> reg = context.registerService(BalloonDevice.class, device, null);
        try {
            BalloonInhibitor.Inhibition first = balloon.inhibit();
            assertTrue(balloon.isInhibited());
            assertEquals(1, forbidden.get());
            balloon.inhibit();
            assertEquals(2, balloon.count());
            assertEquals("told once, at 0 -> 1", 1, forbidden.get());
            first.close();
            first.close(); // a token releases once
            assertEquals(1, balloon.count());
            assertEquals(0, allowed.get());
            balloon.release();
            assertEquals(0, balloon.count());
            assertFalse(balloon.isInhibited());
            assertEquals("told once, at 1 -> 0", 1, allowed.get());
        } finally {
            while (balloon.count() > 0) balloon.release();
            reg.unregister();
        }
    }

    // ---------------------------------------------------------------------------------------------

    private Set<String> bundleLocations(Feature feature, Set<String> into) throws Exception {
        for (BundleInfo b : feature.getBundles()) into.add(b.getLocation().trim());
        for (Dependency d : feature.getDependencies()) {
            Feature dep = features.getFeature(d.getName(), d.getVersion());
            if (dep == null) fail("feature " + d.getName() + "/" + d.getVersion() + " not found");
            // Karaf's own features (scr, wrap) are checked by everyBundleInTheContainerIsUp
            if (dep.getName().startsWith("postcopy")) bundleLocations(dep, into);
        }
        return into;
    }

    private Bundle[] ourBundles() {
        return java.util.Arrays.stream(context.getBundles())
                .filter(b -> b.getSymbolicName() != null && b.getSymbolicName().startsWith("io.postcopy."))
                .toArray(Bundle[]::new);
    }

    private Bundle bySymbolicName(String bsn) {
        for (Bundle b : context.getBundles()) if (bsn.equals(b.getSymbolicName())) return b;
        return null;
    }

    static boolean isFragment(Bundle b) {
        BundleRevision r = b.adapt(BundleRevision.class);
        return r != null && (r.getTypes() & BundleRevision.TYPE_FRAGMENT) != 0;
    }

    /** Bundles ACTIVE; fragments RESOLVED (attached). */
    static boolean upAsItShouldBe(Bundle b) {
        return isFragment(b) ? b.getState() == Bundle.RESOLVED : b.getState() == Bundle.ACTIVE;
    }

    static String stateName(int state) {
        switch (state) {
            case Bundle.UNINSTALLED: return "UNINSTALLED";
            case Bundle.INSTALLED: return "INSTALLED";
            case Bundle.RESOLVED: return "RESOLVED";
            case Bundle.STARTING: return "STARTING";
            case Bundle.STOPPING: return "STOPPING";
            case Bundle.ACTIVE: return "ACTIVE";
            default: return "state " + state;
        }
    }

    static String componentState(int state) {
        switch (state) {
            case ComponentConfigurationDTO.UNSATISFIED_CONFIGURATION: return "UNSATISFIED_CONFIGURATION";
            case ComponentConfigurationDTO.UNSATISFIED_REFERENCE: return "UNSATISFIED_REFERENCE";
            case ComponentConfigurationDTO.SATISFIED: return "SATISFIED";
            case ComponentConfigurationDTO.ACTIVE: return "ACTIVE";
            case ComponentConfigurationDTO.FAILED_ACTIVATION: return "FAILED_ACTIVATION";
            default: return "state " + state;
        }
    }
}
