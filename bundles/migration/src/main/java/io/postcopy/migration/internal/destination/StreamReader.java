package io.postcopy.migration.internal.destination;

import static io.postcopy.migration.internal.AbstractMigration.LOG;
import static io.postcopy.migration.internal.AbstractMigration.TARGET_PAGE;

import io.postcopy.codec.BlockValidator;
import io.postcopy.codec.Command;
import io.postcopy.codec.DecoderOptions;
import io.postcopy.codec.PackageContents;
import io.postcopy.codec.PageBuffers;
import io.postcopy.codec.RamBlockInfo;
import io.postcopy.codec.SectionHeader;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamHandler;
import io.postcopy.fault.IncomingPostcopy;
import io.postcopy.migration.MigrationState;
import io.postcopy.migration.internal.BulkThread;
import io.postcopy.migration.internal.Refused;
import io.postcopy.migration.internal.channel.TlsWire;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.uffd.NativeMemory;
import java.io.IOException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.SocketChannel;
import java.util.List;

/**
 * The main stream's read loop (the seed's {@code qemu_loadvm_state}): reads the connection into the direct receive
 * buffer, decodes it and hands on what it says: the block list (admitted, then the blocks made here), pages (to a
 * {@link PageLoader}), commands and the package ({@link Commands}), the end ({@link End}). A lost connection once the
 * guest runs here pauses the migration ({@link Recovery}); anything else fails it.
 *
 * <p>Block memory is never read or written from Java here while it may be registered: pages go from the receive
 * buffer, or the staging area, into the blocks through {@code UFFDIO_COPY}. Staged pages are placed before any
 * command and before the thread blocks on the socket, so a requested page never waits for the next one.
 *
 * <p>Only the stream thread runs it: the listener's routing thread, and after a pause the one that resumes the
 * migration (each run has a page loader of its own, freed by the thread that used it). API callers read the counters
 * and the decoder's offset.
 */
final class StreamReader implements StreamHandler {
    private final Destination main;
    private final int batch, maxPackage;
    /** The current run's decoder; read by {@link Destination#progress()}. */
    private volatile StreamDecoder decoder;
    private PageLoader loader;
    private long bufAddr;
    /**
     * This run's thread as a mover of background pages, from the end of the switch after RUN ({@link Commands}); null
     * before, and in a resumed run.
     */
    BulkThread bulk;
    /** Counted on this thread, read by API callers. */
    volatile long pages, zeroPages, postcopyPageBytes;

    StreamReader(Destination main, int batch, int maxPackage) {
        this.main = main;
        this.batch = batch;
        this.maxPackage = maxPackage;
    }

    long offset() {
        StreamDecoder d = decoder;
        return d == null ? 0 : d.offset();
    }

    /** A resumed connection: the stream goes on in the RAM section the lost one was in. */
    void resume(ByteBuffer buf, SectionHeader ramSection) {
        decoder = StreamDecoder.forResumedStream(this, DecoderOptions.defaults().withMaxPackageSize(maxPackage),
                main.streamBlocks, ramSection);
        stream(buf);
    }

    /**
     * Reads and decodes the stream on this connection until its end, a failure, or a pause.
     *
     * @param buf a direct buffer in write mode, holding the bytes already read (the listener's, to route the connection)
     */
    void stream(ByteBuffer buf) {
        bufAddr = PageBuffers.address(buf);
        bulk = null;      // another thread's: nice is per thread
        PageLoader staged = null;
        try {
            SocketChannel channel = main.channel;
            ByteChannel wire = main.wire;
            channel.configureBlocking(true);
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            staged = loader = PageLoader.runs(main, batch);
            boolean prefetched = buf.position() > 0;
            if (wire instanceof TlsWire t && TlsWire.READ_AHEAD) t.readAhead("postcopy-tls-in-" + main.id());
            boolean quickAck = QuickAck.supported(channel);
            for (;;) {
                int n = prefetched ? 0 : wire.read(buf);
                prefetched = false;
                if (n > 0) main.recovery.heard();
                // ACK at once only where a guest may wait for these bytes: requested pages come on the main stream
                // in postcopy without a preempt channel, and a source without TCP_NODELAY (QEMU) holds a short
                // write until our ACK. Bulk bytes need no quick ACK: each one costs a setsockopt and an ACK packet
                // (measured: ~20 % of the receiving thread's CPU). Our own source sets TCP_NODELAY: none needed
                if (quickAck && n > 0 && main.listening && main.preempt == null && !main.fromOurSource()) QuickAck.now(channel);
                buf.flip();
                if (decoder == null && (decoder = decoderFor(buf, n < 0)) == null) {
                    buf.compact();       // the block list is not all here yet
                    continue;
                }
                boolean done = decoder.decode(buf);
                staged.flush();
                main.commands.charge();      // pages of a last precopy pass in the switch count against the budget
                // with a preempt channel requested pages never wait for this thread: it may yield to a faulting guest
                if (bulk != null) bulk.check(main.preempt != null);
                buf.compact();
                if (done) break;
                if (n < 0) decoder.finish();
            }
            staged.flush();
            main.end.complete();
        } catch (Throwable t) {
            if (main.recovery.recoverable(t)) {
                // the pages staged from the lost connection are whole: placed; a host page partly gathered is forgotten
                try {
                    if (staged != null) staged.flush();
                } catch (RuntimeException e) {
                    LOG.debug("migration {}: staged pages not placed at the pause: {}", main.id(), e.toString());
                }
                main.recovery.pause(t, decoder);
            } else {
                main.end.fail(t, true);
            }
            if (t instanceof Error && !(t instanceof AssertionError)) throw (Error) t;
        } finally {
            if (staged != null) staged.free();
        }
    }

    /**
     * A decoder for a new stream, once its block list was read ahead ({@link MemSizeProbe}); null while more bytes
     * are needed. Blocks with page sizes of their own make the codec read MEM_SIZE's page-size fields.
     */
    private StreamDecoder decoderFor(ByteBuffer buf, boolean end) {
        List<RamBlockInfo> probed = MemSizeProbe.probe(buf, end);
        if (probed == MemSizeProbe.NEED_MORE) return null;
        main.commands.probed(probed);
        DecoderOptions o = DecoderOptions.defaults().withMaxPackageSize(maxPackage);
        for (RamBlockInfo b : probed) {
            if (b.pageSize() != TARGET_PAGE) {
                o = o.withValidator(new BlockValidator(probed));
                break;
            }
        }
        return new StreamDecoder(this, o);
    }

    // ---- StreamHandler, on this thread ----

    @Override
    public void onRamBlockList(List<RamBlockInfo> blocks) throws IOException {
        // limits before anything is allocated for the peer: blocks, page bitmaps
        long normal = 0, huge = 0;
        for (RamBlockInfo b : blocks) {
            if (b.pageSize() == TARGET_PAGE) normal += b.usedLength();
            else huge += b.usedLength();
        }
        main.service.admit(main, normal, huge);
        main.admittedRam = normal;
        RamBlock[] local = main.local = new RamBlock[blocks.size()];
        long total = 0;
        for (RamBlockInfo b : blocks) {
            String name = main.options.blockPrefix() + b.idstr();
            if (main.service.registry().byName(name) != null) {
                throw new Refused("RAM block \"" + name + "\" already exists here");
            }
            RamBlock.Backing backing = RamBlock.Backing.ANONYMOUS;
            if (b.pageSize() != TARGET_PAGE) {
                if (b.pageSize() != NativeMemory.hugePageSize()) {
                    throw new Refused("RAM block " + b.idstr() + " has page size " + b.pageSize()
                            + "; this host has 4096 and huge pages of " + NativeMemory.hugePageSize());
                }
                backing = RamBlock.Backing.HUGETLB;
            }
            RamBlock r = main.service.registry().create(name, b.usedLength(), backing);
            main.created.add(r);
            local[b.index()] = r;
            total += b.usedLength() / TARGET_PAGE;
        }
        main.totalPages = total;
        main.streamBlocks = List.copyOf(blocks);
        long summary = 0;
        for (RamBlock r : local) summary |= r.pageSize();
        main.commands.checkSummary(summary, "the page sizes of the blocks created here");
        IncomingPostcopy p = main.service.faultService().create(main.id(), List.of(local), main.returnPath);
        main.postcopy = p;
        // precopy pages load into the blocks before userfaultfd is armed: every stream starts in ADVISE
        p.advise();
        LOG.debug("migration {}: {} blocks, {} pages", main.id(), local.length, total);
    }

    @Override
    public void onPage(RamBlockInfo block, long offset, ByteBuffer src, int position, int length) throws IOException {
        if (!main.listening && main.state() == MigrationState.SETUP) main.enter(MigrationState.PRECOPY, null);
        main.commands.discards.flush();      // gathered discards take effect before any page after them
        if (main.commands.pageEndsSwitch()) main.commands.leaveSwitch();     // a source that sent no PING after RUN
        pages++;
        if (main.listening) postcopyPageBytes += length;
        loader.page(block.index(), offset, bufAddr + position, length);
    }

    @Override
    public void onZero(RamBlockInfo block, long offset, int fill, int length) throws IOException {
        if (!main.listening && main.state() == MigrationState.SETUP) main.enter(MigrationState.PRECOPY, null);
        main.commands.discards.flush();      // gathered discards take effect before any page after them
        if (main.commands.pageEndsSwitch()) main.commands.leaveSwitch();
        zeroPages++;
        loader.zero(block.index(), offset, fill, length);
    }

    @Override
    public void onCommand(Command c) throws IOException {
        loader.flush();
        main.commands.command(c, false);
    }

    @Override
    public void onPackage(PackageContents pkg) throws IOException {
        main.commands.onPackage(pkg);
    }

    @Override
    public void onEof() {
        main.commands.discards.flush();
        loader.flush();
    }
}
