package io.postcopy.testkit;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.ToLongFunction;

/**
 * What a page requester was asked, for tests: each request queued for the test's "source" to serve first,
 * counted per page and checked against the block's page size (one whole aligned page per request), with the
 * return path's rule that a request without a block name (REQ_PAGES) is for the block last named
 * (REQ_PAGES_ID).
 *
 * <p>{@link #requestPage} and {@link #failed} have the signatures of {@code io.postcopy.fault.PageRequester},
 * so {@code class R extends RequestLog implements PageRequester} is a recording requester: the kit cannot
 * depend on the fault bundle, whose own tests use it. Written by the fault thread (one request at a time),
 * read by test threads.
 */
public class RequestLog {
    /** One request; {@code block} is the block's name also when the request did not carry it. */
    public record Request(String block, long offset, long length) {}

    /** Every request in order; the test's source takes them from here. */
    public final LinkedBlockingQueue<Request> queue = new LinkedBlockingQueue<>();
    /** Requests, those that named their block, and those that were not one whole aligned page. */
    public final AtomicLong count = new AtomicLong(), withName = new AtomicLong(), badLength = new AtomicLong();

    private final ConcurrentHashMap<String, Integer> perPage = new ConcurrentHashMap<>();
    private final ToLongFunction<String> pageSizeOf;
    private volatile String lastBlock;
    private volatile Throwable failure;

    /** For blocks that all have pages of {@code pageSize} bytes. */
    public RequestLog(long pageSize) {
        this(block -> pageSize);
    }

    /** For blocks whose page size {@code pageSizeOf} gives by block name. */
    public RequestLog(ToLongFunction<String> pageSizeOf) {
        this.pageSizeOf = pageSizeOf;
    }

    public void requestPage(String blockIdstr, long offset, long length) {
        String name = blockIdstr != null ? blockIdstr : lastBlock;
        lastBlock = name;
        if (blockIdstr != null) withName.incrementAndGet();
        long ps = pageSizeOf.applyAsLong(name);
        if (length != ps || offset % ps != 0) badLength.incrementAndGet();
        perPage.merge(name + "@" + offset, 1, Integer::sum);
        count.incrementAndGet();
        queue.add(new Request(name, offset, length));
    }

    public void failed(Throwable cause) {
        failure = cause;
    }

    /** What the incoming migration failed with, as it told its requester; null while it has not. */
    public Throwable failure() {
        return failure;
    }

    /** The most requests any one page had: 1 when the fault thread de-duplicated them all. */
    public int maxPerPage() {
        return perPage.values().stream().mapToInt(Integer::intValue).max().orElse(0);
    }
}
