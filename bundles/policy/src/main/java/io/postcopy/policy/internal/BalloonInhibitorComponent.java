package io.postcopy.policy.internal;

import io.postcopy.policy.BalloonDevice;
import io.postcopy.policy.BalloonInhibitor;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/** The inhibitor as a service, with a whiteboard of {@link BalloonDevice}s. */
// Immediate: a delayed component would be disposed between users and forget its holds.
@Component(service = BalloonInhibitor.class, immediate = true)
public class BalloonInhibitorComponent implements BalloonInhibitor {
    private final BalloonInhibition inhibition = new BalloonInhibition();

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC)
    void bindDevice(BalloonDevice device) {
        inhibition.addDevice(device);
    }

    void unbindDevice(BalloonDevice device) {
        inhibition.removeDevice(device);
    }

    @Override public Inhibition inhibit() { return inhibition.inhibit(); }
    @Override public void release() { inhibition.release(); }
    @Override public boolean isInhibited() { return inhibition.isInhibited(); }
    @Override public int count() { return inhibition.count(); }
    @Override public void addDevice(BalloonDevice device) { inhibition.addDevice(device); }
    @Override public void removeDevice(BalloonDevice device) { inhibition.removeDevice(device); }
}
