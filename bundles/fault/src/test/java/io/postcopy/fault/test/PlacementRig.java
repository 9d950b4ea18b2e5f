package io.postcopy.fault.test;

import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.PlacementBackend;
import io.postcopy.fault.standalone.StandaloneFaultService;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.ramblock.RamBlockRegistry;
import io.postcopy.ramblock.RamBlocks;
import io.postcopy.testkit.SourceImage;
import io.postcopy.uffd.NativeMemory;

/**
 * What a test of placement on the real kernel starts from: a registry, a fault service with one placement backend,
 * and a source image to place from. {@link #close} cleans up every incoming postcopy (unregistering its ranges),
 * removes the blocks and frees the image. The test's thread only.
 */
public final class PlacementRig implements AutoCloseable {
    public final RamBlockRegistry registry = RamBlocks.newRegistry();
    public final StandaloneFaultService service = TestFaultServices.newService(registry);
    /** {@code imageSize} bytes of {@link SourceImage} content from {@code seed}. */
    public final long image;

    public PlacementRig(PlacementBackend backend, long imageSize, int seed) {
        service.addBackend(backend, 0);
        image = SourceImage.create(imageSize, seed);
    }

    public RamBlock anonymousBlock(String name, long size) {
        return registry.create(name, size, RamBlock.Backing.ANONYMOUS);
    }

    @Override
    public void close() {
        for (IncomingPostcopy in : service.incoming()) in.cleanup();
        registry.removeAll();
        NativeMemory.free(image);
    }
}
