import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { type StreamEvent, type StreamInfo, StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { behindRetained, streamNotFound } from "./errors.js";
import type { StreamMetrics } from "./metrics.js";
import type { StreamKey, StreamStore } from "./stream-store.js";

/** A subscriber's view of one stream: its description when subscribing, then its events. */
export interface Feed {
  readonly stream: StreamInfo;
  /** Events after the requested seq; empty when the stream ended at or before it. */
  readonly events: AsyncIterable<StreamEvent>;
  /** The stream ended at or before the requested seq: nothing will follow. */
  readonly complete: boolean;
  /** When the subscription began: events stored later count as live for the latency metric. */
  readonly subscribedAtMs: number;
}

/**
 * Opens a subscription for Subscribe and the Server-Sent Events view alike, refusing a seq past the
 * newest event or behind the retained buffer before anything is read. `lagLimited` says, given the
 * stream, whether the follower is cut off once it falls too far behind (StreamStore.events).
 */
export async function openFeed(
  store: StreamStore,
  key: StreamKey,
  afterSeq: bigint,
  signal: AbortSignal,
  lagLimited: (stream: StreamInfo) => boolean = () => true,
): Promise<Feed> {
  const record = await store.get(key);
  if (!record) throw streamNotFound(key.id);
  const { info } = record;
  if (afterSeq > info.lastSeq) {
    throw new ConnectError(
      `after_seq ${afterSeq} is past the newest event of stream "${key.id}" (seq ${info.lastSeq}); resume from a seq you received`,
      Code.OutOfRange,
    );
  }
  if (afterSeq + 1n < info.firstRetainedSeq && afterSeq < info.lastSeq) {
    throw behindRetained(key.id, afterSeq, info.firstRetainedSeq);
  }
  const complete = info.state !== StreamState.OPEN && afterSeq >= info.lastSeq;
  const subscribedAtMs = Date.now();
  const events = complete ? nothing() : await store.events(key, afterSeq, signal, lagLimited(info));
  return { stream: info, events, complete, subscribedAtMs };
}

async function* nothing(): AsyncGenerator<StreamEvent> {}

/** Counts one delivery to one subscriber in the bandwidth and latency metrics. */
export function countDelivery(metrics: StreamMetrics, event: StreamEvent, subscribedAtMs: number): void {
  if (event.event.case !== "data") return;
  metrics.streamBandwidthBytes.delivered += event.event.value.data.byteLength;
  const storedAt = event.time ? timestampMs(event.time) : 0;
  // Replayed history would read as huge latencies: only events stored while subscribed count.
  if (storedAt >= subscribedAtMs) metrics.streamLatencyMilliseconds.observe(Date.now() - storedAt);
}
