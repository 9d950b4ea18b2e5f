package io.postcopy.fault.test;

import io.postcopy.fault.PageRequester;
import io.postcopy.testkit.RequestLog;
import java.util.function.ToLongFunction;

/**
 * A page requester that records what the fault thread asks for ({@link RequestLog}: queued for the test's
 * source, counted per page, checked for whole aligned pages) and never fails. Called by the fault thread.
 */
public final class RecordingRequester extends RequestLog implements PageRequester {
    /** For blocks that all have pages of {@code pageSize} bytes. */
    public RecordingRequester(long pageSize) {
        super(pageSize);
    }

    /** For blocks whose page size {@code pageSizeOf} gives by block name. */
    public RecordingRequester(ToLongFunction<String> pageSizeOf) {
        super(pageSizeOf);
    }
}
