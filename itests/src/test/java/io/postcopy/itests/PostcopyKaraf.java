package io.postcopy.itests;

import static org.ops4j.pax.exam.CoreOptions.options;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.configureConsole;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.editConfigurationFilePut;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.karafDistributionConfiguration;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.logLevel;

import java.io.File;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.OptionUtils;
import org.ops4j.pax.exam.karaf.options.LogLevelOption.LogLevel;

/**
 * How every itest boots Karaf: the Postcopy for OSGi distribution built next door
 * ({@code ../karaf-distribution/target/postcopy-karaf-VERSION.tar.gz}, passed by failsafe as
 * {@code postcopy.distribution}), never features resolved from the local Maven repository, which can be
 * stale under {@code mvn verify}. The distribution is offline; Pax Exam's own bundles come from the local
 * repository, where the itests' pom has them fetched.
 */
public final class PostcopyKaraf {
    private PostcopyKaraf() {}

    /** The Pax Exam options of the container. */
    public static Option[] distribution() {
        String path = System.getProperty("postcopy.distribution");
        if (path == null) throw new IllegalStateException("system property postcopy.distribution is not set (run through failsafe)");
        File archive = new File(path);
        if (!archive.isFile())
            throw new IllegalStateException(archive + " does not exist: build the distribution first (mvn -pl itests -am verify)");

        Set<Integer> taken = new HashSet<>();     // three distinct ports: two calls of a bare bind(0) may return the same one
        List<Option> options = new ArrayList<>(List.of(
                karafDistributionConfiguration()
                        .frameworkUrl(archive.toURI().toString())
                        .karafVersion(System.getProperty("karaf.version", "4.4.10"))
                        .name("Postcopy for OSGi")
                        .unpackDirectory(new File("target/exam"))
                        .useDeployFolder(false),
                configureConsole().ignoreLocalConsole().ignoreRemoteShell(),
                logLevel(LogLevel.WARN),
                // free ports, so that a distribution started by hand (ssh 8101, JMX 1099/44444) does not collide
                editConfigurationFilePut("etc/org.apache.karaf.shell.cfg", "sshPort", freePort(taken)),
                editConfigurationFilePut("etc/org.apache.karaf.management.cfg", "rmiRegistryPort", freePort(taken)),
                editConfigurationFilePut("etc/org.apache.karaf.management.cfg", "rmiServerPort", freePort(taken))));
        String localRepo = System.getProperty("maven.repo.local");
        if (localRepo != null && !localRepo.isBlank())
            options.add(editConfigurationFilePut("etc/org.ops4j.pax.url.mvn.cfg",
                    "org.ops4j.pax.url.mvn.localRepository", localRepo));
        return options(options.toArray(new Option[0]));
    }

    /**
     * {@link #distribution()} plus the test kit bundle (io.postcopy.testkit: Await, SourceImage, VcpuReader,
     * RequestLog), for tests that use it inside the container. From the reactor's build of it: {@code mvn verify}
     * installs nothing into the local Maven repository, so an {@code mvn:} URL of it does not resolve on a fresh machine.
     */
    public static Option[] withTestKit() {
        String version = org.ops4j.pax.exam.MavenUtils.getArtifactVersion("io.postcopy", "postcopy-test-kit");
        File jar = new File("../bundles/test-kit/target/postcopy-test-kit-" + version + ".jar").getAbsoluteFile();
        if (!jar.isFile()) throw new IllegalStateException(jar + " is missing: build bundles/test-kit first (mvn -B verify "
                + "from the repository's root does)");
        return OptionUtils.combine(distribution(), org.ops4j.pax.exam.CoreOptions.bundle(jar.toURI().toString()));
    }

    private static String freePort(Set<Integer> taken) {
        return Integer.toString(KarafInstance.freePort(taken));
    }
}
