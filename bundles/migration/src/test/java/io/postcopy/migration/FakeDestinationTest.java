package io.postcopy.migration;

import static org.assertj.core.api.Assertions.assertThat;

import io.postcopy.codec.PackageContents;
import io.postcopy.codec.ReturnPathEncoder;
import io.postcopy.codec.ReturnPathMessage;
import io.postcopy.codec.StreamDecoder;
import io.postcopy.codec.StreamHandler;
import io.postcopy.ramblock.RamBlock;
import io.postcopy.testkit.Await;
import io.postcopy.workload.Workload;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The source against a hand-written destination: a request outside the block, a non-zero SHUT. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FakeDestinationTest {
    final Endpoint src = new Endpoint();

    @AfterEach
    void close() {
        src.close();
    }

    interface Behaviour {
        void onPackage(SocketChannel c) throws IOException;

        void onEof(SocketChannel c) throws IOException;
    }

    static void send(SocketChannel c, ReturnPathMessage m) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(600);
        new ReturnPathEncoder().write(m, b);
        b.flip();
        while (b.hasRemaining()) c.write(b);
    }

    /** Accepts one connection and decodes the whole stream, acting as told at the package and at EOF. */
    static int fake(ServerSocketChannel server, Behaviour b) {
        Thread t = new Thread(() -> {
            try (SocketChannel c = server.accept()) {
                new StreamDecoder(new StreamHandler() {
                    @Override
                    public void onCommand(io.postcopy.codec.Command cmd) throws IOException {
                        // as QEMU's loadvm_process_command does once the return path is open
                        if (cmd instanceof io.postcopy.codec.Command.Ping p) send(c, new ReturnPathMessage.Pong(p.value()));
                    }

                    @Override
                    public void onPackage(PackageContents contents) throws IOException {
                        b.onPackage(c);
                    }

                    @Override
                    public void onEof() throws IOException {
                        b.onEof(c);
                    }
                }).decode(c);
                c.shutdownOutput();
                c.read(ByteBuffer.allocate(16));
            } catch (IOException ignored) {
                // the source hung up
            }
        });
        t.setDaemon(true);
        t.start();
        try {
            return ((InetSocketAddress) server.getLocalAddress()).getPort();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    OutgoingMigration migrate(Behaviour b) throws Exception {
        RamBlock ram = src.registry.create("pc.ram", 8 << 20, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 1);
        ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
        try {
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1", fake(server, b)),
                    OutgoingOptions.defaults().withShutTimeout(Duration.ofSeconds(20)));
            assertThat(out.awaitCompletion(Duration.ofSeconds(30))).isEqualTo(MigrationState.FAILED);
            // FAILED comes only once no thread of the migration can touch the block: it may go at once
            assertThat(ram.holders()).isEmpty();
            src.registry.remove("pc.ram");
            return out;
        } finally {
            server.close();
        }
    }

    /**
     * @param writesDuringPrecopy a guest thread also writes pages 0 and 100 over and over while precopy runs: the
     *                            last pass's scan finds them re-dirtied, and they are discarded before the pause
     *                            (then PING 6), the rest at the switch
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void recordsComeInQemusOrder(boolean writesDuringPrecopy) throws Exception {
        RamBlock ram = src.registry.create("pc.ram", 32 << 20, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 1);
        src.service.addDeviceStateHandler(new DeviceStateAndPrecopyTest.Device("mgmt/a", 0, 1, new byte[] {1, 2, 3}));
        java.util.concurrent.atomic.AtomicBoolean writing = new java.util.concurrent.atomic.AtomicBoolean(writesDuringPrecopy);
        Thread writer = new Thread(() -> {
            for (long v = 0; writing.get(); v++) {
                io.postcopy.uffd.NativeMemory.putLong(ram.hostAddress(), v);
                io.postcopy.uffd.NativeMemory.putLong(ram.hostAddress() + 100 * 4096, v);
            }
        }, "guest-writer");
        writer.setDaemon(true);
        if (writesDuringPrecopy) writer.start();
        // the guest writes every 4th page of the first MiB again right before it is paused: discards
        GuestControl guest = GuestControl.of(() -> {
            writing.set(false);
            try {
                writer.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            for (long o = 0; o < (1 << 20); o += 4 * 4096) io.postcopy.uffd.NativeMemory.putLong(ram.hostAddress() + o, o + 1);
        }, () -> { });
        java.util.List<String> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
        Thread t = new Thread(() -> {
            try (SocketChannel c = server.accept()) {
                new StreamDecoder(new StreamHandler() {
                    boolean pages;

                    @Override
                    public void onSectionStart(io.postcopy.codec.SectionHeader h) {
                        seen.add(h.type() + (h.type() == io.postcopy.codec.SectionType.START ? " " + h.idstr() : ""));
                    }

                    @Override
                    public void onRamBlockList(java.util.List<io.postcopy.codec.RamBlockInfo> blocks) {
                        seen.add("MEM_SIZE " + blocks.size());
                    }

                    @Override
                    public void onCommand(io.postcopy.codec.Command cmd) {
                        seen.add(cmd instanceof io.postcopy.codec.Command.Ping p ? "PING " + p.value() : cmd.type().toString());
                    }

                    @Override
                    public void onPackage(PackageContents pkg) {
                        StringBuilder b = new StringBuilder("{");
                        pkg.leadingCommands().forEach(x -> b.append(x.type()).append(' '));
                        pkg.sections().forEach(x -> b.append(x.idstr()).append(' '));
                        pkg.trailingCommands().forEach(x -> b.append(x instanceof io.postcopy.codec.Command.Ping p
                                ? "PING " + p.value() : x.type().toString()).append(' '));
                        seen.add(b.toString().trim() + "}");
                    }

                    @Override
                    public void onEof() throws IOException {
                        seen.add("EOF");
                        send(c, new ReturnPathMessage.Shut(0));
                    }
                }).decode(c);
                c.shutdownOutput();
                c.read(ByteBuffer.allocate(16));
            } catch (IOException ignored) {
                // the source hung up
            }
        });
        t.setDaemon(true);
        t.start();
        OutgoingMigration out = src.service.migrate(
                new InetSocketAddress("127.0.0.1", ((InetSocketAddress) server.getLocalAddress()).getPort()),
                OutgoingOptions.defaults().withMode(MigrationMode.HYBRID).withMaxIterations(1).withGuest(guest)
                        // a pass of ~250 ms: long enough for the writer to run after pages 0 and 100 were sent, however busy the host
                        .withMaxBandwidth(writesDuringPrecopy ? 128L << 20 : 0));
        assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
        server.close();
        // collapse the runs of page sections
        java.util.List<String> order = new java.util.ArrayList<>();
        for (String s : seen) if (order.isEmpty() || !order.get(order.size() - 1).equals(s)) order.add(s);
        long discards = out.progress().discardRanges();
        java.util.List<String> expected = new java.util.ArrayList<>(java.util.List.of("OPEN_RETURN_PATH", "CHANNEL_TOKEN", "PEER_ID", "PING 1",
                "POSTCOPY_ADVISE", "START ram", "MEM_SIZE 1", "PART"));
        if (writesDuringPrecopy) {
            // pages 0 and 100 before the pause (page 0 is then unsent: the switch has 63 of its 64 left, or 64 if the
            // writer touched page 0 again after the scan), the 4th pages at the switch
            assertThat(discards).isBetween(64L, 66L);
            expected.addAll(java.util.List.of("POSTCOPY_RAM_DISCARD", "PING 6"));
        } else {
            assertThat(discards).isEqualTo(64);                // 64 single pages, not adjacent
        }
        expected.add("POSTCOPY_RAM_DISCARD");                  // 6 commands of at most 12 ranges, collapsed
        expected.addAll(java.util.List.of("PING 2", "PACKAGED", "{POSTCOPY_LISTEN mgmt/a PING 3 POSTCOPY_RUN}", "PING 4",
                "PART", "END", "EOF"));
        assertThat(order).containsExactlyElementsOf(expected);
        assertThat(seen.stream().filter("POSTCOPY_RAM_DISCARD"::equals).count()).isEqualTo(writesDuringPrecopy ? 7 : 6);
    }

    @Test
    void requestOutsideTheBlockFailsTheSource() throws Exception {
        OutgoingMigration out = migrate(new Behaviour() {
            @Override
            public void onPackage(SocketChannel c) throws IOException {
                send(c, new ReturnPathMessage.ReqPagesId("pc.ram", 8 << 20, 4096));
            }

            @Override
            public void onEof(SocketChannel c) {
            }
        });
        // after PONG 1, 5 and 2 (8 bytes each): the request's length field at return-path offset 24 + 4
        assertThat(out.failure()).hasValue(
                "return path: OUT_OF_BLOCK at offset 28: request end = 0x800000+0x1000, expected <= 0x800000 (used length of pc.ram)");
    }

    @Test
    void nonZeroShutFailsTheSource() throws Exception {
        OutgoingMigration out = migrate(new Behaviour() {
            @Override
            public void onPackage(SocketChannel c) {
            }

            @Override
            public void onEof(SocketChannel c) throws IOException {
                send(c, new ReturnPathMessage.Shut(3));
            }
        });
        assertThat(out.failure()).hasValue("destination reported failure: SHUT status 3");
    }

    /**
     * A page requested while it is still in flight on the main stream (the destination has not placed it yet, so
     * it faulted) is sent again on the postcopy-preempt channel, once; a page not sent yet goes there only, once,
     * however often it is requested.
     */
    @Test
    void aRequestedPageStillInFlightIsSentAgainOnThePreemptChannelOnce() throws Exception {
        long size = 8 << 20, inFlight = 0x10000, notYet = size - 4096;
        RamBlock ram = src.registry.create("pc.ram", size, RamBlock.Backing.ANONYMOUS);
        Workload.fill(ram, 1);
        java.util.List<Long> main = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        java.util.List<Long> preempt = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        java.util.concurrent.atomic.AtomicReference<java.util.List<io.postcopy.codec.RamBlockInfo>> blocks =
                new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicReference<Throwable> problem = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.CountDownLatch channelDone = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicReference<byte[]> announced = new java.util.concurrent.atomic.AtomicReference<>();
        try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0))) {
            Thread t = new Thread(() -> {
                try (SocketChannel c = server.accept(); SocketChannel pc = server.accept()) {
                    Thread ch = new Thread(() -> {
                        try {
                            // first the channel's proof: our magic and the token the main stream announced
                            ByteBuffer hello = ByteBuffer.allocate(4 + io.postcopy.codec.Wire.CHANNEL_TOKEN_BYTES);
                            while (hello.hasRemaining()) if (pc.read(hello) < 0) throw new IOException("no channel token");
                            Await.until("the block list on the main stream", Duration.ofSeconds(30), () -> blocks.get() != null);
                            assertThat(hello.getInt(0)).isEqualTo(io.postcopy.codec.Wire.CHANNEL_MAGIC);
                            byte[] presented = new byte[io.postcopy.codec.Wire.CHANNEL_TOKEN_BYTES];
                            hello.get(4, presented);
                            assertThat(presented).isEqualTo(announced.get());
                            StreamDecoder d = StreamDecoder.forPostcopyChannel(new StreamHandler() {
                                @Override
                                public void onPage(io.postcopy.codec.RamBlockInfo b, long offset, ByteBuffer src, int position, int length) {
                                    preempt.add(offset);
                                }

                                @Override
                                public void onZero(io.postcopy.codec.RamBlockInfo b, long offset, int fill, int length) {
                                    preempt.add(offset);
                                }
                            }, io.postcopy.codec.DecoderOptions.defaults(), blocks.get());
                            ByteBuffer buf = ByteBuffer.allocate(1 << 16);
                            for (boolean done = false; !done; ) {
                                if (pc.read(buf) < 0) throw new IOException("preempt channel closed before EOS");
                                buf.flip();
                                done = d.decode(buf);
                                buf.compact();
                            }
                        } catch (Throwable e) {
                            problem.compareAndSet(null, e);
                        } finally {
                            channelDone.countDown();
                        }
                    });
                    ch.start();
                    new StreamDecoder(new StreamHandler() {
                        @Override
                        public void onCommand(io.postcopy.codec.Command cmd) {
                            if (cmd instanceof io.postcopy.codec.Command.ChannelToken tk) announced.set(tk.token());
                        }

                        @Override
                        public void onRamBlockList(java.util.List<io.postcopy.codec.RamBlockInfo> l) {
                            blocks.set(l);
                        }

                        @Override
                        public void onPage(io.postcopy.codec.RamBlockInfo b, long offset, ByteBuffer src, int position, int length)
                                throws IOException {
                            main.add(offset);
                            if (offset == inFlight) {
                                // on its way from the source's view: requested twice, as a faulting guest might
                                send(c, new ReturnPathMessage.ReqPagesId("pc.ram", inFlight, 4096));
                                send(c, new ReturnPathMessage.ReqPages(inFlight, 4096));
                                send(c, new ReturnPathMessage.ReqPages(notYet, 4096));
                                send(c, new ReturnPathMessage.ReqPages(notYet, 4096));
                            }
                        }

                        @Override
                        public void onEof() throws IOException {
                            try {
                                channelDone.await(20, TimeUnit.SECONDS);
                            } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                            }
                            send(c, new ReturnPathMessage.Shut(0));
                        }
                    }).decode(c);
                    c.shutdownOutput();
                    c.read(ByteBuffer.allocate(16));
                } catch (Throwable e) {
                    problem.compareAndSet(null, e);
                }
            });
            t.setDaemon(true);
            t.start();
            OutgoingMigration out = src.service.migrate(new InetSocketAddress("127.0.0.1",
                            ((InetSocketAddress) server.getLocalAddress()).getPort()),
                    // paced: the last page must still be unsent when the requests come (unpaced, a busy host once
                    // let the source send all 8 MiB and its EOF before this thread had decoded page 16)
                    OutgoingOptions.defaults().withMode(MigrationMode.POSTCOPY).withShutTimeout(Duration.ofSeconds(20))
                            .withMaxBandwidth(4L << 20));
            assertThat(out.awaitCompletion(Duration.ofSeconds(30))).as("%s", out.failure()).isEqualTo(MigrationState.COMPLETED);
            t.join(10_000);
        }
        assertThat(problem.get()).isNull();
        assertThat(preempt).as("pages on the preempt channel").containsExactlyInAnyOrder(inFlight, notYet);
        assertThat(main).as("the main stream sends every other page once").hasSize((int) (size / 4096) - 1).doesNotHaveDuplicates()
                .doesNotContain(notYet);
        assertThat(out(src).requestedPages()).isEqualTo(2);
    }

    private static MigrationProgress out(Endpoint e) {
        return e.service.migrations().get(0).progress();
    }
}
