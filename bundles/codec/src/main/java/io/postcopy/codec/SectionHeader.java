package io.postcopy.codec;

/**
 * A section header. For PART and END, {@code idstr}, {@code instanceId} and {@code versionId} are those of
 * the START that opened the section (they are not on the wire).
 */
public record SectionHeader(SectionType type, int sectionId, String idstr, int instanceId, int versionId) {
}
