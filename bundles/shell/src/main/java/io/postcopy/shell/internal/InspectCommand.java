package io.postcopy.shell.internal;

import io.postcopy.codec.Inspection;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.completers.FileCompleter;

/** The codec's stream inspector ({@code java -jar postcopy-codec.jar inspect}) inside the shell. */
@Command(scope = "postcopy", name = "inspect",
        description = "Decodes a recorded migration stream (gzip or raw): one line per record, or --summary JSON counts")
@Service
public class InspectCommand extends PostcopyCommandSupport {

    @Argument(index = 0, name = "file", required = true, description = "The stream file (main stream, or return path with --return-path), inside data/postcopy-files (a relative name is looked up there)")
    @Completion(FileCompleter.class)
    String file;

    @Option(name = "--return-path", aliases = "-r", description = "The file is a return-path capture (destination to source)")
    boolean returnPath;

    @Option(name = "--summary", aliases = "-s", description = "Print only a JSON summary of the counts")
    boolean summary;

    @Option(name = "--all-pages", description = "List every RAM page record too (long)")
    boolean allPages;

    @Override
    protected Object doExecute() {
        Path stream = confined(file);
        if (!Files.isRegularFile(stream)) throw new IllegalArgumentException("no such file: " + stream);
        List<String> args = new ArrayList<>(List.of("inspect"));
        if (summary) args.add("--summary");
        if (returnPath) args.add("--return-path");
        if (allPages) args.add("--all-pages");
        args.add(stream.toString());
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status;
        try (PrintStream errs = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            status = Inspection.run(args, out(), errs);
        }
        out().flush();
        if (status != Inspection.OK) {
            // The inspector's own one line ("inspect: FILE: at offset N, FIELD ...").
            String line = err.toString(StandardCharsets.UTF_8).trim();
            throw new IllegalArgumentException(line.isEmpty() ? "exit status " + status : line);
        }
        return null;
    }
}
