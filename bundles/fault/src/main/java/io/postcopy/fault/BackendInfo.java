package io.postcopy.fault;

import java.util.List;

/** A bound placement backend: its name, ranking, supported kinds, and the blocks currently using it. */
public record BackendInfo(String name, int ranking, String supportedKinds, List<String> blocksInUse) {}
