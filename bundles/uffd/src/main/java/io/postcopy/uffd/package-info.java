/**
 * The kernel interface of postcopy: userfaultfd and its ioctls, eventfd, poll, the memory calls
 * (mmap, madvise, memfd, mlock) and PAGEMAP_SCAN dirty tracking, bound with JNR-FFI.
 *
 * <p>Hot paths ({@link io.postcopy.uffd.Userfaultfd#copy}, {@link io.postcopy.uffd.UffdMessages#read})
 * allocate nothing: struct arguments live in per-thread native scratch memory and messages are read
 * into a reusable native buffer exposed through flyweight accessors.
 */
@Export
@Version("1.3.0")
package io.postcopy.uffd;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
