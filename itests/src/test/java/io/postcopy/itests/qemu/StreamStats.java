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
import java.util.List;
import java.util.Map;

/** A recorded migration (both directions) decoded with our codec: what QEMU sent and what came back. */
public final class StreamStats {
    public final Map<CommandType, Integer> commands = new EnumMap<>(CommandType.class);
    public final Map<ReturnPathType, Integer> returnPath = new EnumMap<>(ReturnPathType.class);
    public final List<String> blocks = new ArrayList<>();
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
        ReturnPathDecoder rp = new ReturnPathDecoder((m, off) -> {
            s.returnPath.merge(m.type(), 1, Integer::sum);
            if (m instanceof ReturnPathMessage.ReqPagesId || m instanceof ReturnPathMessage.ReqPages) {
                s.requests++;
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

    @Override
    public String toString() {
        return "stream " + streamBytes + " B: blocks " + blocks + ", pages " + pages + ", zero pages " + zeroPages
                + ", commands " + commands + ", discard ranges " + discardRanges + " (" + discardBytes + " B), packages "
                + packages + " (" + deviceSections + " device sections, commands " + packageCommands + "); PINGs " + pings
                + "; return path " + returnPathBytes + " B: " + returnPath
                + ", PONGs " + pongs + ", page requests " + requests + ", SHUT " + shutStatus;
    }
}
