package io.postcopy.migration;

import org.osgi.annotation.versioning.ProviderType;

/** The source side of a migration. */
@ProviderType
public interface OutgoingMigration extends Migration {
    /** Switches a HYBRID migration to postcopy after the current precopy chunk; ignored otherwise. */
    void startPostcopy();

    OutgoingOptions options();
}
