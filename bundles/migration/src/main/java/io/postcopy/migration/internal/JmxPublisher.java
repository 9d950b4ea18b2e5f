package io.postcopy.migration.internal;

import io.postcopy.fault.BackendInfo;
import io.postcopy.fault.FaultService;
import io.postcopy.fault.FaultStatistics;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.fault.LatencySummary;
import io.postcopy.migration.Migration;
import io.postcopy.migration.MigrationProgress;
import io.postcopy.migration.MigrationService;
import io.postcopy.migration.OutgoingMigration;
import java.lang.management.ManagementFactory;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import javax.management.JMException;
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
 * knows (running or ended), found by polling the service every 500 ms. Attributes are read live on each
 * JMX request. A separate component so that the migration engine itself needs no change.
 */
@Component(immediate = true)
public class JmxPublisher {
    static final String DOMAIN = "io.postcopy";
    private static final Logger LOG = LoggerFactory.getLogger(JmxPublisher.class);

    private final MigrationService migrations;
    private final FaultService faults;
    private final MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    private final Map<String, ObjectName> published = new HashMap<>();
    private final ScheduledExecutorService poller;
    private ObjectName faultName;

    @Activate
    public JmxPublisher(@Reference MigrationService migrations, @Reference FaultService faults) {
        this.migrations = migrations;
        this.faults = faults;
        try {
            faultName = new ObjectName(DOMAIN + ":type=FaultService");
            register(new StandardMBean(new FaultView(faults), FaultServiceStatsMBean.class), faultName);
        } catch (JMException e) {
            LOG.warn("cannot publish the fault service MBean: {}", e.toString());
        }
        poller = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "postcopy-jmx");
            t.setDaemon(true);
            return t;
        });
        poller.scheduleWithFixedDelay(this::sync, 0, 500, TimeUnit.MILLISECONDS);
    }

    private synchronized void sync() {
        try {
            Set<String> ids = new HashSet<>();
            for (Migration m : migrations.migrations()) {
                ids.add(m.id());
                if (published.containsKey(m.id())) continue;
                ObjectName n = new ObjectName(DOMAIN + ":type=Migration,id=" + m.id());
                if (register(new StandardMBean(new MigrationView(m), MigrationStatsMBean.class), n)) published.put(m.id(), n);
            }
            published.entrySet().removeIf(e -> {
                if (ids.contains(e.getKey())) return false;
                unregister(e.getValue());
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
    synchronized void deactivate() {
        poller.shutdownNow();
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
