package io.postcopy.migration.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * A setting of PID io.postcopy.migration is defined once, in the metatype ({@link MigrationConfig}): Settings and the
 * plain-Java factory read it through the OSGi Converter, and the distribution's cfg file lists it with its default.
 */
class SettingsTest {
    static Set<String> attributes() {
        return Arrays.stream(MigrationConfig.class.getDeclaredMethods()).map(Method::getName)
                .collect(Collectors.toCollection(TreeSet::new));
    }

    @Test
    void everyAttributeButTheStartupListenerIsASettingByName() {
        Set<String> want = attributes();
        want.remove("listenPort");    // opens a listener at activation: the component's business, no setting
        assertThat(new TreeSet<>(Settings.KEYS)).isEqualTo(want);
    }

    @Test
    void theMetatypeDefaultsAreTheDefaults() {
        Map<String, Object> defaults = Arrays.stream(MigrationConfig.class.getDeclaredMethods())
                .filter(m -> !m.getName().equals("listenPort"))
                .collect(Collectors.toMap(Method::getName, Method::getDefaultValue));
        assertThat(Settings.from(defaults)).isEqualTo(Settings.DEFAULTS);
        assertThat(Settings.realtimeCpuPercent(Settings.config(defaults))).isEqualTo(50);
    }

    @Test
    void theDistributionsCfgFileListsEveryAttributeWithItsDefault() throws Exception {
        Path cfg = Path.of("../../karaf-distribution/src/main/assembly/etc/io.postcopy.migration.cfg");
        Map<String, String> file = Files.readAllLines(cfg).stream().map(String::trim)
                .filter(l -> !l.isEmpty() && !l.startsWith("#") && l.contains("="))
                .collect(Collectors.toMap(l -> l.substring(0, l.indexOf('=')).trim(), l -> l.substring(l.indexOf('=') + 1).trim()));
        assertThat(new TreeSet<>(file.keySet())).isEqualTo(attributes());
        Settings fromFile = Settings.from(file.entrySet().stream().filter(e -> !e.getKey().equals("listenPort"))
                .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue)));
        assertThat(fromFile).as("the file's values are the defaults").isEqualTo(Settings.DEFAULTS);
        assertThat(Settings.config(file.entrySet().stream().filter(e -> !e.getKey().equals("listenPort"))
                .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue))).realtimeCpuPercent()).isEqualTo(50);
    }

    @Test
    void stringsConvertAsConfigAdminWouldHandThemOverAndBadOnesAreNamed() {
        Settings s = Settings.from(Map.of("sendBufferSize", "65536", "bulkThreadNice", 7L, "tlsCredentialsDir", " /x "));
        assertThat(s.sendBufferSize()).isEqualTo(65536);
        assertThat(s.bulkThreadNice()).isEqualTo(7);
        assertThat(s.limits().tlsCredentialsDir()).isEqualTo("/x");
        assertThat(s.receiveBufferSize()).as("absent: the metatype default").isEqualTo(Settings.DEFAULTS.receiveBufferSize());
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Settings.from(Map.of("handshakeTimeoutMillis", "soon")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("handshakeTimeoutMillis = \"soon\" is no integer");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Settings.from(Map.of("listenPort", 4444)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unknown migration setting \"listenPort\"");
    }
}
