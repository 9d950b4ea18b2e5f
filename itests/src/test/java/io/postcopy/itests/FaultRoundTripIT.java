package io.postcopy.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.postcopy.testkit.VcpuReader;
import io.postcopy.uffd.HostSupportProbe;
import io.postcopy.uffd.Mapping;
import io.postcopy.uffd.NativeMemory;
import io.postcopy.uffd.Poller;
import io.postcopy.uffd.RegisterMode;
import io.postcopy.uffd.UffdFeature;
import io.postcopy.uffd.UffdIoctl;
import io.postcopy.uffd.UffdMessages;
import io.postcopy.uffd.Userfaultfd;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import javax.inject.Inject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * A real postcopy fault inside Karaf: a thread touches a page registered MISSING and blocks in the kernel;
 * this test, as the fault thread, reads the fault, checks its address and places a page of known content
 * with UFFDIO_COPY; the woken thread sees exactly that content.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class FaultRoundTripIT {

    /** Waits for the uffd bundle's component, so the native binding is loaded through the bundle. */
    @Inject
    HostSupportProbe probe;

    @Configuration
    public Option[] config() {
        return PostcopyKaraf.withTestKit();
    }

    @Test
    public void faultingThreadIsReleasedByCopyWithTheRightContent() throws Exception {
        assertTrue(probe.probe().failures(), probe.probe().supported());
        final long PAGE = NativeMemory.pageSize();
        try (Userfaultfd uffd = Userfaultfd.open();
             Mapping ram = Mapping.anonymous(8 * PAGE);
             Mapping source = Mapping.anonymous(PAGE);
             Mapping seen = Mapping.anonymous(PAGE);
             UffdMessages messages = new UffdMessages(16);
             Poller poller = new Poller(uffd.fd())) {
            uffd.api(EnumSet.noneOf(UffdFeature.class));
            Set<UffdIoctl> ioctls = uffd.register(ram.address(), ram.length(), EnumSet.of(RegisterMode.MISSING));
            assertTrue("COPY on anonymous memory: " + ioctls, ioctls.contains(UffdIoctl.COPY));

            // The page the source will "send": a pattern no zero page or stale page could match.
            for (long o = 0; o < PAGE; o += 8) NativeMemory.putLong(source.address() + o, 0x5043_4F50_0000_0000L ^ (o * 0x9E37_79B9L));

            long page = ram.address() + 5 * PAGE;
            long touched = page + 200;
            // reads by a native memcpy, so that it blocks in the kernel in native state, not in Java code
            VcpuReader toucher = VcpuReader.range(touched, PAGE - 200).into(seen.address()).named("postcopy-itest-toucher");
            toucher.start();

            // The fault thread's side: poll, read the message, check the address.
            long faultAddress = -1;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (faultAddress < 0 && System.nanoTime() < deadline) {
                if (poller.poll(100) == 0) continue;
                assertFalse("uffd poll error", poller.failed(0));
                int n = messages.read(uffd);
                for (int i = 0; i < n; i++) {
                    assertEquals("event", UffdMessages.EVENT_PAGEFAULT, messages.event(i));
                    assertFalse("a read fault", messages.isWrite(i));
                    faultAddress = messages.faultAddress(i);
                }
            }
            assertTrue("a fault was read within 10 s", faultAddress >= 0);
            assertEquals("the fault is on the touched page", page, faultAddress & -PAGE);
            assertFalse("the touching thread is blocked until the page is placed", toucher.awaitDone(Duration.ofMillis(200)));

            long placed = uffd.copy(page, source.address(), PAGE, 0);
            assertEquals("bytes placed", PAGE, placed);

            assertTrue("the touching thread was woken by the copy", toucher.awaitDone(Duration.ofSeconds(10)));
            for (long o = 0; o < PAGE - 200; o += 8) {
                assertEquals("byte " + (200 + o) + " seen by the woken thread",
                        NativeMemory.getLong(source.address() + 200 + o), NativeMemory.getLong(seen.address() + o));
            }
            assertEquals("the placed page is in place", 0,
                    NativeMemory.nativeCompare(page, source.address(), PAGE));
            // A second copy onto the same page is the EEXIST race, reported as its own outcome.
            assertEquals(Userfaultfd.EXISTS, uffd.copy(page, source.address(), PAGE, 0));
            uffd.unregister(ram.address(), ram.length());
        }
    }
}
