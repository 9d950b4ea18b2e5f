package io.postcopy.migration.internal;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

@ObjectClassDefinition(name = "Postcopy migration", description = "Defaults of the migration service")
public @interface MigrationConfig {
    @AttributeDefinition(description = "Address listeners bind when none is given")
    String listenAddress() default "127.0.0.1";

    @AttributeDefinition(description = "Port of a listener opened at activation; -1 for none, 0 for an ephemeral port")
    int listenPort() default -1;

    @AttributeDefinition(description = "Largest PACKAGED blob accepted (bytes)")
    int maxPackageSize() default 64 << 20;

    @AttributeDefinition(description = "SO_SNDBUF of outgoing connections and the encoder's buffer (bytes); 0 = kernel default")
    int sendBufferSize() default 0;

    @AttributeDefinition(description = "Bytes of contiguous pages gathered before one placement; 4096 = one UFFDIO_COPY per page")
    int stagingBatchSize() default 65536;
}
