package io.postcopy.codec;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/** Records decoder events as text lines (pages by CRC of their bytes) for comparisons in tests. */
final class Recorder implements StreamHandler {
    final List<String> events = new ArrayList<>();
    final List<Command> commands = new ArrayList<>();
    final List<PackageContents> packages = new ArrayList<>();
    List<RamBlockInfo> blocks;
    int pages;
    int zeros;

    static long crc(ByteBuffer src, int position, int length) {
        CRC32 c = new CRC32();
        c.update(src.duplicate().limit(position + length).position(position));
        return c.getValue();
    }

    @Override public void onHeader(int version) { events.add("header " + version); }
    @Override public void onConfiguration(String machineName) { events.add("config " + machineName); }
    @Override public void onSectionStart(SectionHeader h) { events.add("section " + h); }
    @Override public void onSectionEnd(SectionHeader h) { events.add("footer " + h.sectionId()); }
    @Override public void onRamBlockList(List<RamBlockInfo> b) { blocks = b; events.add("blocks " + b); }
    @Override public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) {
        pages++;
        events.add("page " + block.idstr() + " " + Long.toHexString(offset) + " " + Long.toHexString(crc(src, position, length)));
    }
    @Override public void onZero(RamBlockInfo block, long offset, int fill, int length) {
        zeros++;
        events.add("zero " + block.idstr() + " " + Long.toHexString(offset) + " " + fill);
    }
    @Override public void onRamEos() { events.add("eos"); }
    @Override public void onCommand(Command c) { commands.add(c); events.add("command " + c); }
    @Override public void onPackage(PackageContents p) {
        packages.add(p);
        events.add("package " + p.leadingCommands() + " " + p.sections() + " " + p.trailingCommands());
    }
    @Override public void onEof() { events.add("eof"); }
}
