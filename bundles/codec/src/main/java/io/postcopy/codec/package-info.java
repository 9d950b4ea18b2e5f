/**
 * QEMU 7.2-compatible migration wire format: stream header, sections, RAM records, commands
 * (including the seed's discard protocol), packages and the return path; the
 * {@link io.postcopy.codec.DiscardBatcher} and strict, incremental, zero-copy decoding.
 *
 * <p>All wire constants live in one table: {@link io.postcopy.codec.SectionType},
 * {@link io.postcopy.codec.CommandType}, {@link io.postcopy.codec.ReturnPathType},
 * {@link io.postcopy.codec.RamFlag} and {@link io.postcopy.codec.Wire}. Every decoding error is a
 * {@link io.postcopy.codec.CodecException}.
 */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("1.6.0")
package io.postcopy.codec;
