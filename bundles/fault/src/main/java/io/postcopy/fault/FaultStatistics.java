package io.postcopy.fault;

import java.util.List;
import java.util.Map;

/**
 * A snapshot of an incoming migration's counters. Every fault read from the userfaultfd is either a
 * request or de-duplicated: {@code faults == requests + dedupReceived + dedupRequested}.
 *
 * @param faults          page faults read from the userfaultfd
 * @param requests        page requests sent to the source
 * @param dedupReceived   faults on pages already present by the time they were read
 * @param dedupRequested  faults on pages already requested (another thread, or the same page again)
 * @param pagesPlaced     pages made present by copies (block pages)
 * @param zeroPagesPlaced pages made present as zero pages
 * @param bytesPlaced     bytes made present (copies and zero pages)
 * @param raced           pages found already present when placing (EEXIST)
 * @param discards        discard ranges applied
 * @param discardedBytes  bytes discarded
 * @param latency         fault → placement, all blocks
 * @param blocktimeMicros total time threads spent blocked on faults, all threads
 * @param blocktimeByThread the same per kernel thread id
 * @param blocks          per-block progress
 */
public record FaultStatistics(long faults, long requests, long dedupReceived, long dedupRequested,
                              long pagesPlaced, long zeroPagesPlaced, long bytesPlaced, long raced,
                              long discards, long discardedBytes, LatencySummary latency,
                              long blocktimeMicros, Map<Integer, Long> blocktimeByThread,
                              List<BlockStatistics> blocks) {}
