package io.postcopy.codec.internal;

import io.postcopy.codec.CodecException;
import io.postcopy.codec.Command;
import io.postcopy.codec.DecoderOptions;
import io.postcopy.codec.DeviceSection;
import io.postcopy.codec.DiscardRange;
import io.postcopy.codec.PackageContents;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.SectionHeader;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamHandler;

import java.io.BufferedInputStream;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

/**
 * The stream inspector: {@code java -jar postcopy-codec.jar inspect [--summary] [--return-path]
 * [--ram-digest DIR] [--all-pages] STREAM} (STREAM may be gzip-compressed, or {@code -} for stdin).
 * Exit status 0 on success, 2 on a malformed stream (one line naming offset, field, value and
 * expectation), 1 on an I/O error, 64 on a usage error.
 */
public final class Inspector {

    static final String USAGE = "usage: inspect [--summary] [--return-path] [--ram-digest DIR] [--all-pages] STREAM";

    /** Largest block the digest replays (the image is sparse; the digest file has 32 bytes per page). */
    static final long MAX_DIGEST_BLOCK = 64L << 30;

    private Inspector() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs the inspector; returns the exit status. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        boolean summary = false;
        boolean returnPath = false;
        boolean allPages = false;
        Path digestDir = null;
        String file = null;
        if (args.length == 0 || !args[0].equals("inspect")) {
            err.println(USAGE);
            return 64;
        }
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--summary": summary = true; break;
                case "--return-path": returnPath = true; break;
                case "--all-pages": allPages = true; break;
                case "--ram-digest":
                    if (++i == args.length) {
                        err.println(USAGE);
                        return 64;
                    }
                    digestDir = Path.of(args[i]);
                    break;
                default:
                    if (file != null || (args[i].startsWith("--") && !args[i].equals("-"))) {
                        err.println(USAGE);
                        return 64;
                    }
                    file = args[i];
            }
        }
        if (file == null || (returnPath && digestDir != null)) {
            err.println(USAGE);
            return 64;
        }
        try (InputStream in = open(file)) {
            if (returnPath) {
                returnPath(in, summary, out);
            } else {
                stream(in, summary, allPages, digestDir, out);
            }
            out.flush();
            return 0;
        } catch (CodecException e) {
            out.flush();
            err.println("inspect: " + file + ": " + e.getMessage());
            return 2;
        } catch (IOException e) {
            out.flush();
            err.println("inspect: " + file + ": " + e);
            return 1;
        }
    }

    static InputStream open(String file) throws IOException {
        InputStream raw = new BufferedInputStream(file.equals("-") ? System.in : new FileInputStream(file), 1 << 16);
        raw.mark(2);
        int a = raw.read();
        int b = raw.read();
        raw.reset();
        return a == 0x1f && b == 0x8b ? new BufferedInputStream(new GZIPInputStream(raw, 1 << 16), 1 << 16) : raw;
    }

    private static void count(Map<String, Long> m, String k, long n) {
        m.merge(k, n, Long::sum);
    }

    // ---------------------------------------------------------------- return path

    private static void returnPath(InputStream in, boolean summary, PrintStream out) throws IOException {
        Map<String, Long> messages = new LinkedHashMap<>();
        ReturnPathDecoder d = new ReturnPathDecoder((m, off) -> {
            count(messages, m.type().name(), 1);
            if (!summary) {
                out.println(off + " " + describe(m));
            }
        });
        d.decode(Channels.newChannel(in));
        if (summary) {
            out.println(new Json().open().key("messages").counts(messages).key("bytes").value(d.offset()).close());
        }
    }

    private static String describe(ReturnPathMessage m) {
        if (m instanceof ReturnPathMessage.ReqPagesId r) {
            return "REQ_PAGES_ID block=" + r.block() + " start=0x" + Long.toHexString(r.start()) + " length=" + r.length();
        } else if (m instanceof ReturnPathMessage.ReqPages r) {
            return "REQ_PAGES start=0x" + Long.toHexString(r.start()) + " length=" + r.length();
        } else if (m instanceof ReturnPathMessage.RecvBitmap r) {
            return "RECV_BITMAP block=" + r.block() + " bytes=" + r.bitmap().remaining();
        } else if (m instanceof ReturnPathMessage.Shut s) {
            return "SHUT status=" + s.status();
        } else if (m instanceof ReturnPathMessage.Pong p) {
            return "PONG value=" + p.value();
        } else if (m instanceof ReturnPathMessage.ResumeAck a) {
            return "RESUME_ACK value=" + a.value();
        }
        return m.type().name();
    }

    // ---------------------------------------------------------------- main stream

    private static void stream(InputStream in, boolean summary, boolean allPages, Path digestDir, PrintStream out)
            throws IOException {
        Collector c = new Collector(summary ? null : out, allPages, digestDir != null);
        StreamDecoder d = new StreamDecoder(c, DecoderOptions.defaults());
        c.decoder = d;
        d.decode(Channels.newChannel(in));
        long trailing = 0;
        byte[] skip = new byte[8192];
        for (int n; (n = in.read(skip)) > 0; ) {
            trailing += n;
        }
        if (summary) {
            out.println(c.json(d.offset(), trailing));
        } else if (trailing > 0) {
            out.println(d.offset() + " (" + trailing + " bytes after EOF, not decoded)");
        }
        if (digestDir != null) {
            c.writeDigests(digestDir);
        }
    }

    /** Counts everything, prints the listing, and replays RAM into sparse images for the digest. */
    static final class Collector implements StreamHandler {
        final PrintStream out;
        final boolean allPages;
        final boolean image;
        StreamDecoder decoder;
        final Map<String, Long> commands = new LinkedHashMap<>();
        final Map<String, Long> packageCommands = new LinkedHashMap<>();
        final Map<String, Long> sections = new LinkedHashMap<>();
        final Map<String, Long> ram = new LinkedHashMap<>();
        final Map<String, Long> deviceSections = new LinkedHashMap<>();
        long discardRanges;
        long discardCommands;
        long packages;
        List<RamBlockInfo> blocks = List.of();
        String configuration;
        /** Per block: page number to contents; absent pages are zero. */
        final List<Map<Long, byte[]>> images = new ArrayList<>();
        long sectionPages;
        long sectionZeros;

        Collector(PrintStream out, boolean allPages, boolean image) {
            this.out = out;
            this.allPages = allPages;
            this.image = image;
            for (String k : new String[] {"START", "PART", "END", "FULL", "EOF"}) {
                sections.put(k, 0L);
            }
            ram.put("PAGE", 0L);
            ram.put("ZERO", 0L);
        }

        private void line(String s) {
            if (out != null) {
                out.println(decoder.offset() + " " + s);
            }
        }

        @Override public void onHeader(int version) {
            line("HEADER QEVM version=" + version);
        }

        @Override public void onConfiguration(String machineName) {
            configuration = machineName;
            line("CONFIGURATION machine=" + machineName);
        }

        @Override public void onSectionStart(SectionHeader h) {
            count(sections, h.type().name(), 1);
            sectionPages = 0;
            sectionZeros = 0;
            line("SECTION_" + h.type() + " id=" + h.sectionId() + " idstr=" + h.idstr() + " instance=" + h.instanceId()
                    + " version=" + h.versionId());
        }

        @Override public void onSectionEnd(SectionHeader h) {
            line("FOOTER id=" + h.sectionId());
        }

        @Override public void onRamBlockList(List<RamBlockInfo> b) {
            blocks = b;
            StringBuilder s = new StringBuilder("MEM_SIZE blocks=" + b.size());
            for (RamBlockInfo r : b) {
                s.append(' ').append(r.idstr()).append(":0x").append(Long.toHexString(r.usedLength()));
                images.add(new HashMap<>());
            }
            line(s.toString());
        }

        @Override public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) {
            count(ram, "PAGE", 1);
            sectionPages++;
            if (allPages) {
                line("PAGE block=" + block.idstr() + " offset=0x" + Long.toHexString(offset));
            }
            if (image) {
                byte[] p = new byte[length];
                src.get(position, p);
                images.get(block.index()).put(offset / length, p);
            }
        }

        @Override public void onZero(RamBlockInfo block, long offset, int fill, int length) {
            count(ram, "ZERO", 1);
            sectionZeros++;
            if (allPages) {
                line("ZERO block=" + block.idstr() + " offset=0x" + Long.toHexString(offset) + " fill=" + fill);
            }
            if (image) {
                if (fill == 0) {
                    images.get(block.index()).remove(offset / length);
                } else {
                    byte[] p = new byte[length];
                    java.util.Arrays.fill(p, (byte) fill);
                    images.get(block.index()).put(offset / length, p);
                }
            }
        }

        @Override public void onRamEos() {
            count(ram, "EOS", 1);
            line("EOS pages=" + sectionPages + " zero=" + sectionZeros);
        }

        @Override public void onCommand(Command c) {
            count(commands, c.type().name(), 1);
            line("COMMAND " + describe(c));
            discard(c);
        }

        private void discard(Command c) {
            if (c instanceof Command.PostcopyRamDiscard d) {
                discardCommands++;
                discardRanges += d.ranges().size();
                if (image) {
                    RamBlockInfo b = blocks.stream().filter(x -> x.idstr().equals(d.block())).findFirst().orElseThrow();
                    Map<Long, byte[]> img = images.get(b.index());
                    for (DiscardRange r : d.ranges()) {
                        if (r.length() / 4096 > img.size()) {
                            img.keySet().removeIf(k -> k >= r.start() / 4096 && k < (r.start() + r.length()) / 4096);
                        } else {
                            for (long p = r.start() / 4096; p < (r.start() + r.length()) / 4096; p++) {
                                img.remove(p);
                            }
                        }
                    }
                }
            }
        }

        @Override public void onPackage(PackageContents p) {
            packages++;
            line("PACKAGE length=" + p.length() + " commands=" + p.leadingCommands().size() + "+" + p.trailingCommands().size()
                    + " device_sections=" + p.sections().size());
            List<Command> all = new ArrayList<>(p.leadingCommands());
            all.addAll(p.trailingCommands());
            for (Command c : p.leadingCommands()) {
                line("  PACKAGE_COMMAND " + describe(c));
            }
            for (DeviceSection s : p.sections()) {
                count(deviceSections, s.idstr(), 1);
                line("  " + (p.streamOffset() + s.offset()) + " DEVICE_SECTION id=" + s.sectionId() + " idstr=" + s.idstr() + " instance=" + s.instanceId()
                        + " version=" + s.versionId() + " offset=" + s.offset() + " length=" + s.length()
                        + (s.delimited() ? "" : " (undelimited)"));
            }
            for (Command c : p.trailingCommands()) {
                line("  PACKAGE_COMMAND " + describe(c));
            }
            for (Command c : all) {
                count(packageCommands, c.type().name(), 1);
                discard(c);
            }
        }

        @Override public void onEof() {
            count(sections, "EOF", 1);
            line("EOF");
        }

        String json(long bytes, long trailing) {
            Json j = new Json().open();
            j.key("bytes").value(bytes);
            if (configuration != null) {
                j.key("configuration").value(configuration);
            }
            j.key("commands").counts(commands);
            j.key("package_commands").counts(packageCommands);
            j.key("packages").value(packages);
            j.key("device_sections").counts(deviceSections);
            j.key("discard_commands").value(discardCommands);
            j.key("discard_ranges").value(discardRanges);
            j.key("sections").counts(sections);
            j.key("ram").counts(ram);
            j.key("blocks").openArray();
            for (RamBlockInfo b : blocks) {
                j.open().key("name").value(b.idstr()).key("used_length").value(b.usedLength()).close();
            }
            j.closeArray();
            j.key("trailing_bytes").value(trailing);
            return j.close().toString();
        }

        void writeDigests(Path dir) throws IOException {
            Files.createDirectories(dir);
            MessageDigest sha;
            try {
                sha = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IOException(e);
            }
            byte[] zeroHash = sha.digest(new byte[4096]);
            for (RamBlockInfo b : blocks) {
                if (b.usedLength() > MAX_DIGEST_BLOCK) {
                    throw new IOException("block " + b.idstr() + " too large for --ram-digest: " + b.usedLength());
                }
                Map<Long, byte[]> img = images.get(b.index());
                Path f = dir.resolve(b.idstr().replace('/', '_') + ".sha256");
                try (OutputStream o = new java.io.BufferedOutputStream(Files.newOutputStream(f), 1 << 16)) {
                    long pages = b.usedLength() / 4096;
                    for (long p = 0; p < pages; p++) {
                        byte[] page = img.get(p);
                        o.write(page == null ? zeroHash : sha.digest(page));
                    }
                }
            }
        }
    }

    static String describe(Command c) {
        if (c instanceof Command.PostcopyRamDiscard d) {
            StringBuilder s = new StringBuilder("POSTCOPY_RAM_DISCARD block=" + d.block() + " ranges=" + d.ranges().size());
            for (DiscardRange r : d.ranges()) {
                s.append(" 0x").append(Long.toHexString(r.start())).append("+0x").append(Long.toHexString(r.length()));
            }
            return s.toString();
        } else if (c instanceof Command.Ping p) {
            return "PING value=" + p.value();
        } else if (c instanceof Command.PostcopyAdvise a) {
            return a.withSizes() ? "POSTCOPY_ADVISE page_size_summary=0x" + Long.toHexString(a.pageSizeSummary())
                    + " target_page_size=" + a.targetPageSize() : "POSTCOPY_ADVISE (no sizes)";
        } else if (c instanceof Command.Packaged p) {
            return "PACKAGED length=" + p.length();
        } else if (c instanceof Command.RecvBitmap r) {
            return "RECV_BITMAP block=" + r.block();
        }
        return c.type().name();
    }
}
