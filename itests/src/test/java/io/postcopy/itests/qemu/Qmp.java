package io.postcopy.itests.qemu;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A small QMP client over a Unix socket. A reader thread parses one JSON object per line; asynchronous
 * events are kept in {@link #events()} (and skipped while waiting for a return). Commands are synchronous
 * and serialised; each carries an {@code id} that the reply must echo.
 */
public final class Qmp implements AutoCloseable {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    /** A QMP {@code error} reply. */
    public static final class QmpException extends IOException {
        private static final long serialVersionUID = 1L;
        public final String errorClass;

        QmpException(String command, String errorClass, String desc) {
            super(command + ": " + errorClass + ": " + desc);
            this.errorClass = errorClass;
        }
    }

    private final String name;
    private final SocketChannel ch;
    private final BlockingQueue<Object> replies = new LinkedBlockingQueue<>();
    private final List<Map<String, Object>> events = new CopyOnWriteArrayList<>();
    private final AtomicLong ids = new AtomicLong();
    private final Thread reader;
    private final Map<String, Object> greeting;
    private volatile boolean closed;
    private static final Object EOF = new Object();

    private Qmp(String name, SocketChannel ch) throws IOException {
        this.name = name;
        this.ch = ch;
        BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
        reader = new Thread(() -> {
            try {
                String line;
                while ((line = in.readLine()) != null) {
                    if (line.isBlank()) {
                        continue;
                    }
                    Map<String, Object> m = Json.parseObject(line);
                    if (m.containsKey("event")) {
                        events.add(m);
                    } else {
                        replies.add(m);
                    }
                }
            } catch (IOException | RuntimeException e) {
                if (!closed) {
                    replies.add(e);
                }
            }
            replies.add(EOF);
        }, "qmp-" + name);
        reader.setDaemon(true);
        reader.start();
        Object g = take(Duration.ofSeconds(30), "greeting");
        @SuppressWarnings("unchecked")
        Map<String, Object> gm = (Map<String, Object>) g;
        if (!gm.containsKey("QMP")) {
            throw new IOException(name + ": not a QMP greeting: " + gm);
        }
        greeting = gm;
        execute("qmp_capabilities");
    }

    /** Connects (retrying until the socket exists and accepts, up to {@code timeout}) and negotiates capabilities. */
    public static Qmp connect(String name, Path socket, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (System.nanoTime() < deadline) {
            if (Files.exists(socket)) {
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    ch.connect(UnixDomainSocketAddress.of(socket));
                    return new Qmp(name, ch);
                } catch (IOException e) {
                    last = e;
                    ch.close();
                }
            }
            Thread.sleep(50);
        }
        throw new IOException(name + ": no QMP on " + socket + " within " + timeout, last);
    }

    public Map<String, Object> greeting() {
        return greeting;
    }

    public List<Map<String, Object>> events() {
        return events;
    }

    private Object take(Duration timeout, String what) throws IOException {
        Object r;
        try {
            r = replies.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(name + ": interrupted waiting for " + what, e);
        }
        if (r == null) {
            throw new IOException(name + ": no reply to " + what + " within " + timeout);
        }
        if (r == EOF) {
            replies.add(EOF);
            throw new IOException(name + ": QMP connection closed waiting for " + what);
        }
        if (r instanceof Exception) {
            throw new IOException(name + ": QMP read failed waiting for " + what, (Exception) r);
        }
        return r;
    }

    public Object execute(String command) throws IOException {
        return execute(command, null, DEFAULT_TIMEOUT);
    }

    public Object execute(String command, Map<String, Object> arguments) throws IOException {
        return execute(command, arguments, DEFAULT_TIMEOUT);
    }

    /** Sends a command and returns its {@code return} value; throws {@link QmpException} on an {@code error}. */
    public synchronized Object execute(String command, Map<String, Object> arguments, Duration timeout) throws IOException {
        long id = ids.incrementAndGet();
        Map<String, Object> msg = Json.obj("execute", command);
        if (arguments != null) {
            msg.put("arguments", arguments);
        }
        msg.put("id", id);
        ByteBuffer out = ByteBuffer.wrap((Json.write(msg) + "\n").getBytes(StandardCharsets.UTF_8));
        while (out.hasRemaining()) {
            ch.write(out);
        }
        while (true) {
            @SuppressWarnings("unchecked")
            Map<String, Object> r = (Map<String, Object>) take(timeout, command);
            Object rid = r.get("id");
            if (rid != null && !(rid instanceof Long && (Long) rid == id)) {
                continue; // a late reply to an earlier command that timed out
            }
            if (r.containsKey("error")) {
                @SuppressWarnings("unchecked")
                Map<String, Object> e = (Map<String, Object>) r.get("error");
                throw new QmpException(name + " " + command, String.valueOf(e.get("class")), String.valueOf(e.get("desc")));
            }
            return r.get("return");
        }
    }

    // ---- the commands the harness uses ----

    public void migrateSetCapabilities(Map<String, Boolean> caps) throws IOException {
        List<Object> l = new java.util.ArrayList<>();
        caps.forEach((k, v) -> l.add(Json.obj("capability", k, "state", v)));
        execute("migrate-set-capabilities", Json.obj("capabilities", l));
    }

    public void migrateSetParameters(Map<String, Object> params) throws IOException {
        execute("migrate-set-parameters", params);
    }

    public void migrate(String uri) throws IOException {
        execute("migrate", Json.obj("uri", uri));
    }

    public void migrateStartPostcopy() throws IOException {
        execute("migrate-start-postcopy");
    }

    @SuppressWarnings("unchecked")
    public Map<String, Object> queryMigrate() throws IOException {
        return (Map<String, Object>) execute("query-migrate");
    }

    @SuppressWarnings("unchecked")
    public Map<String, Object> queryStatus() throws IOException {
        return (Map<String, Object>) execute("query-status");
    }

    /** Run state, e.g. {@code running}, {@code paused}, {@code postmigrate}, {@code inmigrate}. */
    public String runState() throws IOException {
        return String.valueOf(queryStatus().get("status"));
    }

    public void pmemsave(long address, long size, Path file, Duration timeout) throws IOException {
        execute("pmemsave", Json.obj("val", address, "size", size, "filename", file.toAbsolutePath().toString()), timeout);
    }

    public void stop() throws IOException {
        execute("stop");
    }

    public void cont() throws IOException {
        execute("cont");
    }

    /** Asks QEMU to quit; a connection closed before the reply counts as success. */
    public void quit() {
        try {
            execute("quit", null, Duration.ofSeconds(5));
        } catch (IOException ignored) {
            // QEMU may close the socket before or right after its reply
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            ch.close();
        } catch (IOException ignored) {
            // closing
        }
    }
}
