package io.postcopy.migration.internal;

import io.postcopy.fault.BackendInfo;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.LatencySummary;
import io.postcopy.migration.Migration;
import io.postcopy.migration.FaultServiceStatsMBean;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationStatsMBean;
import io.postcopy.migration.MigrationService;
import io.postcopy.migration.OutgoingMigration;
import java.lang.management.ManagementFactory;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import io.postcopy.migration.MigrationEvent;
import io.postcopy.migration.MigrationListener;
import javax.management.JMException;
import javax.management.MBeanNotificationInfo;
import javax.management.Notification;
import javax.management.NotificationBroadcasterSupport;
import javax.management.StandardEmitterMBean;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import javax.management.StandardMBean;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes the migrations and the fault service as MBeans in the platform MBeanServer, which Karaf's JMX
 * connector (the {@code management} feature) serves: {@code io.postcopy:type=FaultService} while this
 * component is active, and {@code io.postcopy:type=Migration,id=ID} for every migration the migration service
 * knows (running or ended). It listens to the service's state changes (a {@link MigrationListener}): a new migration
 * gets its MBean at its first event, every state change is a JMX notification of type
 * {@code io.postcopy.migration.<STATE>} from that MBean (user data: the event's properties), and migrations the
 * service no longer keeps lose theirs. Attributes are read live on each JMX request.
 */
@Component(immediate = true, service = {})
public class JmxPublisher implements MigrationListener {
    static final String DOMAIN = "io.postcopy";
    /** Notification types: this and the state entered. */
    static final String NOTIFICATION_PREFIX = "io.postcopy.migration.";
    private static final MBeanNotificationInfo[] NOTIFICATIONS = {new MBeanNotificationInfo(
            java.util.Arrays.stream(io.postcopy.migration.MigrationState.values()).map(st -> NOTIFICATION_PREFIX + st.name())
                    .toArray(String[]::new), Notification.class.getName(), "a state the migration entered")};
    private static final Logger LOG = LoggerFactory.getLogger(JmxPublisher.class);

    private final MigrationService migrations;
    private final FaultService faults;
    private final MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    private final Map<String, ObjectName> published = new HashMap<>();
    private final Map<String, NotificationBroadcasterSupport> emitters = new HashMap<>();
    private long sequence;
    private ObjectName faultName;
    private final org.osgi.framework.ServiceRegistration<MigrationListener> listener;

    @Activate
    public JmxPublisher(@Reference MigrationService migrations, @Reference FaultService faults,
                        org.osgi.framework.BundleContext context) {
        this.migrations = migrations;
        this.faults = faults;
        try {
            faultName = new ObjectName(DOMAIN + ":type=FaultService");
            register(new StandardMBean(new FaultView(faults), FaultServiceStatsMBean.class), faultName);
        } catch (JMException e) {
            LOG.warn("cannot publish the fault service MBean: {}", e.toString());
        }
        sync();      // the migrations from before this component
        // a listener service of its own registration, not this component's: as a DS service it would form a cycle
        // (this component needs the migration service, which binds every listener), which SCR reports as an error
        listener = context.registerService(MigrationListener.class, this, null);
    }

    @Override
    public synchronized void migrationChanged(MigrationEvent e) {
        if (e.previous() == null || !published.containsKey(e.id())) sync();
        NotificationBroadcasterSupport emitter = emitters.get(e.id());
        if (emitter == null) return;
        Notification n = new Notification(NOTIFICATION_PREFIX + e.state().name(), published.get(e.id()), ++sequence,
                e.timestampMillis(), e.id() + ": " + (e.previous() == null ? "created" : e.previous() + " -> ") + e.state()
                + (e.reason() == null ? "" : ": " + e.reason()));
        n.setUserData(new HashMap<>(e.properties()));
        emitter.sendNotification(n);
    }

    private synchronized void sync() {
        try {
            Set<String> ids = new HashSet<>();
            for (Migration m : migrations.migrations()) {
                ids.add(m.id());
                if (published.containsKey(m.id())) continue;
                ObjectName n = new ObjectName(DOMAIN + ":type=Migration,id=" + m.id());
                NotificationBroadcasterSupport emitter = new NotificationBroadcasterSupport(NOTIFICATIONS);
                if (register(new StandardEmitterMBean(new MigrationView(m), MigrationStatsMBean.class, emitter), n)) {
                    published.put(m.id(), n);
                    emitters.put(m.id(), emitter);
                }
            }
            published.entrySet().removeIf(e -> {
                if (ids.contains(e.getKey())) return false;
                unregister(e.getValue());
                emitters.remove(e.getKey());
                return true;
            });
        } catch (JMException | RuntimeException e) {
            LOG.debug("JMX sync failed", e);
        }
    }

    private boolean register(Object mbean, ObjectName name) throws JMException {
        if (server.isRegistered(name)) server.unregisterMBean(name);
        server.registerMBean(mbean, name);
        return true;
    }

    private void unregister(ObjectName n) {
        try {
            if (server.isRegistered(n)) server.unregisterMBean(n);
        } catch (JMException e) {
            LOG.debug("cannot unregister {}", n, e);
        }
    }

    @Deactivate
    void deactivate() {
        try {
            listener.unregister();
        } catch (IllegalStateException gone) {
            // unregistered with the bundle already
        }
        deactivateMBeans();
    }

    private synchronized void deactivateMBeans() {
        emitters.clear();
        for (ObjectName n : published.values()) unregister(n);
        published.clear();
        if (faultName != null) unregister(faultName);
    }

    /** Live attributes of one migration. */
    static final class MigrationView implements MigrationStatsMBean {
        private final Migration m;

        MigrationView(Migration m) {
            this.m = m;
        }

        private MigrationProgress p() {
            return m.progress();
        }

        private LatencySummary latency() {
            return m.statistics().map(FaultStatistics::latency).orElse(LatencySummary.EMPTY);
        }

        @Override public String getId() { return m.id(); }

        @Override public String getDirection() { return m instanceof OutgoingMigration ? "outgoing" : "incoming"; }

        @Override public String getPeer() { return m.peer(); }

        @Override public String getState() { return m.state().name(); }

        @Override public String getFailure() { return m.failure().orElse(""); }

        @Override public String getReason() { return m.reason().orElse(""); }

        @Override public long getBytes() { return p().bytes(); }

        @Override public long getPages() { return p().pages(); }

        @Override public long getZeroPages() { return p().zeroPages(); }

        @Override public long getTotalPages() { return p().totalPages(); }

        @Override public long getRemainingPages() { return p().remainingPages(); }

        @Override
        public double getPercentDone() {
            MigrationProgress p = p();
            return p.totalPages() <= 0 ? 0 : 100.0 * (p.totalPages() - p.remainingPages()) / p.totalPages();
        }

        @Override public double getThroughput() { return p().throughput(); }

        @Override public long getFaults() { return m.statistics().map(FaultStatistics::faults).orElse(0L); }

        @Override public long getRequests() { return p().requests(); }

        @Override public long getPrefetchedPages() { return p().prefetchedPages(); }

        @Override public long getDiscards() { return p().discardRanges(); }

        @Override public double getLatencyP50Micros() { return latency().p50(); }

        @Override public double getLatencyP99Micros() { return latency().p99(); }

        @Override public double getLatencyMaxMicros() { return latency().max(); }

        @Override public long getBlocktimeMicros() { return m.statistics().map(FaultStatistics::blocktimeMicros).orElse(0L); }

        @Override public long getDowntimeMicros() {
            return m instanceof io.postcopy.migration.OutgoingMigration o
                    ? o.downtime().map(d -> d.toNanos() / 1000).orElse(-1L) : -1L;
        }
    }

    /** Live attributes of the fault service. */
    static final class FaultView implements FaultServiceStatsMBean {
        private final FaultService f;

        FaultView(FaultService f) {
            this.f = f;
        }

        @Override public int getLiveIncoming() { return f.incoming().size(); }

        @Override
        public String[] getIncomingIds() {
            return f.incoming().stream().map(IncomingPostcopy::id).toArray(String[]::new);
        }

        @Override
        public String[] getBackends() {
            List<BackendInfo> bs = f.backends();
            return bs.stream().map(b -> b.name() + " (ranking " + b.ranking() + "): "
                    + (b.blocksInUse().isEmpty() ? "-" : String.join(", ", b.blocksInUse()))).toArray(String[]::new);
        }

        @Override
        public long getLiveFaults() {
            long n = 0;
            for (IncomingPostcopy in : f.incoming()) n += in.statistics().faults();
            return n;
        }
    }
}
