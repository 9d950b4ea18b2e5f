package io.postcopy.shell.internal;

import io.postcopy.ramblock.RamBlock;
import io.postcopy.shell.internal.completers.BlockNameCompleter;
import io.postcopy.workload.PageDigest;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.completers.FileCompleter;

/**
 * Writes the per-page SHA-256 of a block: 32 bytes per 4 KiB page of the used length, in page order — the
 * format of the codec inspector's {@code --ram-digest}. The pages are read with a native memcpy into a private
 * buffer ({@link PageDigest}), never from Java: the block may be registered with userfaultfd, and a page still
 * missing makes this command wait in native code until it arrives.
 */
@Command(scope = "postcopy", name = "digest",
        description = "Writes the SHA-256 of every 4 KiB page of a block to FILE, 32 bytes per page (inspect --ram-digest format)")
@Service
public class DigestCommand extends PostcopyCommandSupport {

    @Argument(index = 0, name = "block", required = true, description = "The block to digest")
    @Completion(BlockNameCompleter.class)
    String blockName;

    @Argument(index = 1, name = "file", required = true, description = "The digest file to write (replaced if present), inside data/postcopy-files (a relative name goes there)")
    @Completion(FileCompleter.class)
    String file;

    @Override
    protected Object doExecute() throws Exception {
        RamBlock block = block(blockName);
        Path target = confined(file);
        if (Files.isDirectory(target)) throw new IllegalArgumentException(target + " is a directory");
        byte[] digest = PageDigest.of(block);
        Files.write(target, digest);
        long pages = digest.length / PageDigest.DIGEST_BYTES;
        out().println("Wrote " + pages + " page digests (" + digest.length + " bytes) of block " + block.idstr()
                + " to " + target);
        return null;
    }
}
