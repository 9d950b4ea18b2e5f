package io.postcopy.codec;

/**
 * A device section inside a package, kept opaque: device sections carry no length, so the codec delimits
 * them by their footer ({@code 0x7e} + the same section id) followed by the next section header or the
 * package's trailing commands. When that fails, the remaining bytes form one section with
 * {@code delimited == false} whose id fields are those of its first header.
 *
 * @param offset byte offset of the section header within the package
 * @param length bytes from the header through the footer
 */
public record DeviceSection(int sectionId, String idstr, int instanceId, int versionId, int offset, int length,
                            boolean delimited) {
}
