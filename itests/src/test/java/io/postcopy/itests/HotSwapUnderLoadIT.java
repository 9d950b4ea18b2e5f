package io.postcopy.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import io.postcopy.fault.BackendInfo;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.PageRequester;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.testkit.Await;
import io.postcopy.testkit.RequestLog;
import io.postcopy.testkit.SourceImage;
import io.postcopy.testkit.VcpuReader;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import javax.inject.Inject;
import org.junit.Assume;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.service.component.runtime.ServiceComponentRuntime;
import org.osgi.service.component.runtime.dto.ComponentConfigurationDTO;
import org.osgi.service.component.runtime.dto.ComponentDescriptionDTO;

/**
 * Hot swap under load inside Karaf: a fault storm runs through the {@link FaultService} OSGi service over an
 * anonymous block (anon backend) and a hugetlb block (hugepage backend) while another thread stops and starts
 * the backend-hugepage and backend-anon bundles. Placements for a block whose backend is away wait for it;
 * no page is lost or wrong, every faulting reader is woken, the migration completes.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class HotSwapUnderLoadIT {
    static final long PAGE = 4096;
    static final String FAULT_COMPONENT = "io.postcopy.fault.internal.FaultServiceComponent";
    static final String HUGEPAGE_BSN = "io.postcopy.backend-hugepage", ANON_BSN = "io.postcopy.backend-anon";
    static final Path NR_HUGEPAGES = Path.of("/proc/sys/vm/nr_hugepages");

    @Inject
    BundleContext context;

    @Inject
    ServiceComponentRuntime scr;

    @Inject
    FaultService faults;

    @Inject
    RamBlockRegistry registry;

    @Configuration
    public Option[] config() {
        return PostcopyKaraf.withTestKit();
    }

    @Test
    public void faultServiceIsSatisfiedWithBothBackendsRanked() throws Exception {
        Bundle fault = bundle("io.postcopy.fault");
        ComponentDescriptionDTO d = scr.getComponentDescriptionDTO(fault, FAULT_COMPONENT);
        assertNotNull(FAULT_COMPONENT + " is declared", d);
        List<Integer> states = scr.getComponentConfigurationDTOs(d).stream().map(c -> c.state).collect(Collectors.toList());
        assertFalse("the fault service has a configuration", states.isEmpty());
        for (int s : states) assertTrue("fault service component state " + s,
                s == ComponentConfigurationDTO.ACTIVE || s == ComponentConfigurationDTO.SATISFIED);
        awaitBackends("hugepage:100", "anon:0");
        BackendInfo hp = faults.backends().get(0);
        assertTrue(hp.supportedKinds(), hp.supportedKinds().contains("hugetlbfs"));
    }

    @Test
    public void backendBundlesStopAndStartWhileAFaultStormRuns() throws Exception {
        awaitBackends("hugepage:100", "anon:0");
        long huge = NativeMemory.hugePageSize();
        Assume.assumeTrue("the kernel has huge pages", huge > 0);
        long blockBytes = 16L << 20;
        long old = reserveHugePages(blockBytes / huge + 2);
        RamBlock a = null, h = null;
        IncomingPostcopy in = null;
        long imageA = 0, imageH = 0;
        try {
            a = registry.create("itest.swap.anon", blockBytes, RamBlock.Backing.ANONYMOUS);
            h = registry.create("itest.swap.huge", blockBytes, RamBlock.Backing.HUGETLB);
            imageA = SourceImage.create(blockBytes, 3);
            imageH = SourceImage.create(blockBytes, 4);
            Requests requests = new Requests(Map.of(a.idstr(), PAGE, h.idstr(), huge));
            in = faults.create("itest-hot-swap", List.of(a, h), requests);
            Stream[] streams = {new Stream(in, a, imageA, 16 * PAGE), new Stream(in, h, imageH, huge)};
            in.advise();
            in.listen();
            in.run();

            AtomicLong mismatches = new AtomicLong();
            List<VcpuReader> readers = new ArrayList<>();
            for (int t = 0; t < 6; t++)
                readers.add(VcpuReader.randomPages(t % 2 == 0 ? a : h, 150, t).expect(t % 2 == 0 ? imageA : imageH)
                        .countInto(mismatches).named("itest-reader-" + t));
            readers.forEach(Thread::start);

            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> sourceError = new AtomicReference<>(), swapError = new AtomicReference<>();
            Thread source = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        RequestLog.Request r = requests.queue.poll(10, TimeUnit.MILLISECONDS);
                        if (r == null) continue;
                        for (Stream s : streams) if (s.block.idstr().equals(r.block())) s.sendUnit(r.offset() / s.unit);
                    }
                } catch (InterruptedException ignored) {
                    // done
                } catch (Throwable e) {
                    sourceError.set(e);
                }
            }, "itest-source");
            source.start();

            // the bundle restarts, concurrently with the feeder below
            AtomicInteger swaps = new AtomicInteger();
            Thread swapper = new Thread(() -> {
                try {
                    for (int round = 0; round < 3; round++) {
                        for (String bsn : List.of(HUGEPAGE_BSN, ANON_BSN)) {
                            Bundle b = bundle(bsn);
                            b.stop();
                            Thread.sleep(60);
                            b.start();
                            swaps.incrementAndGet();
                            Thread.sleep(40);
                        }
                    }
                } catch (Throwable e) {
                    swapError.set(e);
                }
            }, "itest-swapper");
            swapper.start();

            // the background stream: each block's units in order, slowly enough that readers fault first
            for (int step = 0; step < 20; step++) {
                for (Stream s : streams) {
                    long from = step * s.units() / 20, to = (step + 1) * s.units() / 20;
                    for (long u = from; u < to; u++) s.sendUnit(u);
                }
                Thread.sleep(30);
            }
            int swapsWhileFeeding = swaps.get();
            swapper.join(60_000);
            long deadline = System.currentTimeMillis() + 30_000;
            for (VcpuReader r : readers) r.join(Math.max(1, deadline - System.currentTimeMillis()));
            long blocked = readers.stream().filter(Thread::isAlive).count();
            stop.set(true);
            source.join(10_000);

            FaultStatistics st = in.statistics();
            System.out.println("itest hot swap: " + swaps.get() + " bundle restarts (" + swapsWhileFeeding + " while feeding), " + st.faults() + " faults, "
                    + st.requests() + " requests, raced " + st.raced() + ", latency " + st.latency());
            assertNull("bundle stop/start: " + swapError.get(), swapError.get());
            assertEquals("bundle restarts", 6, swaps.get());
            assertTrue("bundles restarted while the stream was running: " + swapsWhileFeeding, swapsWhileFeeding > 0);
            assertNull("source placements: " + sourceError.get(), sourceError.get());
            assertEquals("readers never woken (lost wakeups)", 0, blocked);
            assertEquals("target pages read with wrong content", 0, mismatches.get());
            assertFalse("no failure: " + in.failure(), in.failure().isPresent());
            assertNull(requests.failure());
            assertTrue("complete", in.complete());
            assertEquals("anon block byte for byte", 0, NativeMemory.nativeCompare(a.hostAddress(), imageA, blockBytes));
            assertEquals("hugetlb block byte for byte", 0, NativeMemory.nativeCompare(h.hostAddress(), imageH, blockBytes));
            assertEquals("requests of the wrong size", 0, requests.badLength.get());
            assertEquals("each page requested at most once", 1, requests.maxPerPage());
            assertTrue("faults happened", st.faults() > 0);
            assertEquals("no page placed twice", 2 * blockBytes, st.bytesPlaced());
            assertEquals(st.faults(), st.requests() + st.dedupReceived() + st.dedupRequested());
            assertEquals("nothing missing", 0, in.cleanup().totalBytes());
            awaitBackends("hugepage:100", "anon:0");
        } finally {
            if (in != null) in.cleanup();
            if (a != null) registry.remove(a.idstr());
            if (h != null) registry.remove(h.idstr());
            if (imageA != 0) NativeMemory.free(imageA);
            if (imageH != 0) NativeMemory.free(imageH);
            Files.writeString(NR_HUGEPAGES, Long.toString(old));
        }
    }

    private Bundle bundle(String bsn) {
        for (Bundle b : context.getBundles()) if (bsn.equals(b.getSymbolicName())) return b;
        throw new AssertionError("no bundle " + bsn);
    }

    private void awaitBackends(String... expected) {
        List<String> want = List.of(expected);
        Await.until("bound backends, highest ranking first: " + want, Duration.ofSeconds(5), Duration.ofMillis(50),
                () -> faults.backends().stream().map(b -> b.name() + ":" + b.ranking()).collect(Collectors.toList()), want::equals);
    }

    /** Raises the huge page pool; returns the old size to restore. Skips loudly when the machine cannot. */
    private static long reserveHugePages(long pages) throws IOException {
        long old = Long.parseLong(Files.readString(NR_HUGEPAGES).trim());
        try {
            Files.writeString(NR_HUGEPAGES, Long.toString(old + pages));
        } catch (IOException e) {
            skip("cannot write " + NR_HUGEPAGES + ": " + e);
        }
        if (NativeMemory.hugePagesFree() < pages) {
            Files.writeString(NR_HUGEPAGES, Long.toString(old));
            skip("only " + NativeMemory.hugePagesFree() + " huge pages free, " + pages + " needed");
        }
        return old;
    }

    private static void skip(String why) {
        System.err.println("\n*** HOT SWAP ITEST SKIPPED: this machine cannot reserve huge pages: " + why + " ***\n");
        Assume.assumeTrue(why, false);
    }

    /** One stream per block: a unit (a huge page, or 64 KiB) is sent whole, its target pages in order, under the lock. */
    static final class Stream {
        final IncomingPostcopy in;
        final RamBlock block;
        final long image, unit;

        Stream(IncomingPostcopy in, RamBlock block, long image, long unit) {
            this.in = in;
            this.block = block;
            this.image = image;
            this.unit = unit;
        }

        long units() {
            return block.usedLength() / unit;
        }

        synchronized void sendUnit(long u) {
            SourceImage.forEachRun(u * unit, unit, 0, (o, l, zero) -> {
                if (zero) in.placeZeroPages(block, o, l);
                else in.placePages(block, o, image + o, l);
            });
        }
    }

    /** Records requests (per block and offset) and queues them for the test's source. */
    static final class Requests extends RequestLog implements PageRequester {
        Requests(Map<String, Long> pageSizes) {
            super(pageSizes::get);
        }
    }
}
