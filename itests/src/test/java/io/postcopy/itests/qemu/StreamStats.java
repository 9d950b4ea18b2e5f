package io.postcopy.itests.qemu;

import io.postcopy.codec.Command;
import io.postcopy.codec.CommandType;
import io.postcopy.codec.PackageContents;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.ReturnPathDecoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.ReturnPathType;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamHandler;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** A recorded migration (both directions) decoded with our codec: what QEMU sent and what came back. */
public final class StreamStats {
    public final Map<CommandType, Integer> commands = new EnumMap<>(CommandType.class);
    public final Map<ReturnPathType, Integer> returnPath = new EnumMap<>(ReturnPathType.class);
    public final List<String> blocks = new ArrayList<>();
    /** The MEM_SIZE block list as decoded (what a postcopy-preempt channel's records refer to). */
    public final List<RamBlockInfo> blockInfos = new ArrayList<>();
    public long discardRanges;
    public long discardBytes;
    public long pages;
    public long zeroPages;
    public int packages;
    public int deviceSections;
    public long streamBytes;
    public long returnPathBytes;
    public int shutStatus = -1;
    /** Pages requested over the return path (REQ_PAGES_ID + REQ_PAGES). */
    public long requests;
    /** Every target page requested over the return path, as {@code "block@0xoffset"}. */
    public final Set<String> requestedPages = new HashSet<>();
    /** Commands inside packages (not in {@link #commands}). */
    public final Map<CommandType, Integer> packageCommands = new EnumMap<>(CommandType.class);
    /** Every PING value in stream order, top level and inside packages; every PONG value in return-path order. */
    public final List<Integer> pings = new ArrayList<>();
    public final List<Integer> pongs = new ArrayList<>();

    public int count(CommandType t) {
        return commands.getOrDefault(t, 0);
    }

    public int count(ReturnPathType t) {
        return returnPath.getOrDefault(t, 0);
    }

    /** Decodes both files completely; any codec error propagates (the stream must be valid QEMU 7.2). */
    public static StreamStats decode(Path stream, Path returnPathFile) throws IOException {
        StreamStats s = new StreamStats();
        StreamDecoder d = new StreamDecoder(new StreamHandler() {
            @Override
            public void onRamBlockList(List<RamBlockInfo> list) {
                list.forEach(b -> s.blocks.add(b.idstr()));
                s.blockInfos.addAll(list);
            }

            @Override
            public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) {
                s.pages++;
            }

            @Override
            public void onZero(RamBlockInfo block, long offset, int fill, int length) {
                s.zeroPages++;
            }

            @Override
            public void onCommand(Command c) {
                s.commands.merge(c.type(), 1, Integer::sum);
                if (c instanceof Command.Ping) {
                    s.pings.add(((Command.Ping) c).value());
                }
                if (c instanceof Command.PostcopyRamDiscard) {
                    Command.PostcopyRamDiscard dc = (Command.PostcopyRamDiscard) c;
                    s.discardRanges += dc.ranges().size();
                    dc.ranges().forEach(r -> s.discardBytes += r.length());
                }
            }

            @Override
            public void onPackage(PackageContents p) {
                s.packages++;
                s.deviceSections += p.sections().size();
                for (List<Command> l : List.of(p.leadingCommands(), p.trailingCommands())) {
                    for (Command c : l) {
                        s.packageCommands.merge(c.type(), 1, Integer::sum);
                        if (c instanceof Command.Ping) {
                            s.pings.add(((Command.Ping) c).value());
                        }
                    }
                }
            }
        });
        try (FileChannel ch = FileChannel.open(stream, StandardOpenOption.READ)) {
            s.streamBytes = ch.size();
            d.decode(ch, 1 << 20);
        }
        String[] lastRequested = {null};
        ReturnPathDecoder rp = new ReturnPathDecoder((m, off) -> {
            s.returnPath.merge(m.type(), 1, Integer::sum);
            if (m instanceof ReturnPathMessage.ReqPagesId || m instanceof ReturnPathMessage.ReqPages) {
                s.requests++;
                long start;
                int length;
                if (m instanceof ReturnPathMessage.ReqPagesId id) {
                    lastRequested[0] = id.block();
                    start = id.start();
                    length = id.length();
                } else {
                    ReturnPathMessage.ReqPages rq = (ReturnPathMessage.ReqPages) m;
                    start = rq.start();
                    length = rq.length();
                }
                for (long o = start; o < start + length; o += PageDigest.PAGE) {
                    s.requestedPages.add(pageKey(lastRequested[0], o));
                }
            }
            if (m instanceof ReturnPathMessage.Pong) {
                s.pongs.add(((ReturnPathMessage.Pong) m).value());
            }
            if (m instanceof ReturnPathMessage.Shut) {
                s.shutStatus = ((ReturnPathMessage.Shut) m).status();
            }
        });
        try (FileChannel ch = FileChannel.open(returnPathFile, StandardOpenOption.READ)) {
            s.returnPathBytes = ch.size();
            rp.decode(ch);
        }
        return s;
    }

    static String pageKey(String block, long offset) {
        return block + "@0x" + Long.toHexString(offset);
    }

    /**
     * A recorded QEMU postcopy-preempt channel (an extra connection of the migration): bare RAM records of
     * the main stream's blocks, decoded with {@link StreamDecoder#forPostcopyChannel} up to its one EOS.
     *
     * @param pages      PAGE records
     * @param zeroPages  ZERO records
     * @param eos        whether the recording holds the EOS that ends the channel
     * @param trailing   bytes recorded after the EOS (none expected)
     * @param pageKeys   every page carried, as {@code "block@0xoffset"}
     */
    public record PostcopyChannelStats(long bytes, long pages, long zeroPages, boolean eos, long trailing,
                                       Set<String> pageKeys) {
        @Override
        public String toString() {
            return "postcopy channel " + bytes + " B: pages " + pages + ", zero pages " + zeroPages
                    + (eos ? ", EOS" : ", NO EOS") + (trailing == 0 ? "" : ", " + trailing + " B after the EOS");
        }
    }

    /** Decodes {@code file} as the postcopy-preempt channel of the stream decoded into this (its blocks). */
    public PostcopyChannelStats decodePostcopyChannel(Path file) throws IOException {
        long[] n = new long[2];
        Set<String> keys = new HashSet<>();
        StreamDecoder d = StreamDecoder.forPostcopyChannel(new StreamHandler() {
            @Override
            public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) {
                n[0]++;
                keys.add(pageKey(block.idstr(), offset));
            }

            @Override
            public void onZero(RamBlockInfo block, long offset, int fill, int length) {
                n[1]++;
                keys.add(pageKey(block.idstr(), offset));
            }
        }, io.postcopy.codec.DecoderOptions.defaults(), blockInfos);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer buf = ByteBuffer.allocateDirect(StreamDecoder.MIN_BUFFER_CAPACITY);
            boolean eos = false;
            while (!eos) {
                int r = ch.read(buf);
                buf.flip();
                eos = d.decode(buf);
                buf.compact();
                if (r < 0 && !eos) {
                    break;
                }
            }
            return new PostcopyChannelStats(size, n[0], n[1], eos, size - d.offset(), keys);
        }
    }

    @Override
    public String toString() {
        return "stream " + streamBytes + " B: blocks " + blocks + ", pages " + pages + ", zero pages " + zeroPages
                + ", commands " + commands + ", discard ranges " + discardRanges + " (" + discardBytes + " B), packages "
                + packages + " (" + deviceSections + " device sections, commands " + packageCommands + "); PINGs " + pings
                + "; return path " + returnPathBytes + " B: " + returnPath
                + ", PONGs " + pongs + ", page requests " + requests + ", SHUT " + shutStatus;
    }
}
