import { create } from "@bufbuild/protobuf";
import { type AdaptBitrate, AdaptBitrateSchema } from "../../gen/mentatlab/v1/stream_pb.js";
import type { Principal } from "../shared/principal.js";
import { type StreamKey, streamKeyString } from "./stream-store.js";

/** Headroom below what the slowest subscriber receives, so a producer that follows the advice lets it catch up. */
const SUGGESTED_FRACTION = 0.8;
/** Delivery under this share of the produced rate counts as falling behind (bursty wake-ups are not). */
const BEHIND_FRACTION = 0.9;
/** Resolution of the sliding windows: a sample costs one addition, whatever the delivery rate. */
const BUCKETS = 20;
/**
 * Rates are measured over this many judging windows: a link's flow control lets bytes through in
 * bursts (a window update at a time), and one window may see a whole burst or none of it.
 */
const HORIZON_WINDOWS = 4;

/**
 * Bitrate advice from what subscribers really receive. Every live subscriber of a stream in this
 * process counts the bytes handed to its connection; a slow link or reader shows up there because
 * the transport's flow control stops the subscriber's feed from being pulled. When a producer
 * appends, its stream is judged at most once per window: a subscriber subscribed for a whole window
 * that received under 90 % of the produced rate (both measured over the last four windows, or since
 * it subscribed) and is more than half a window behind is falling behind, and the producer is told to go under 80 % of what the slowest such subscriber receives,
 * naming it. Hysteresis: once advised, a stream counts as behind from a quarter window of lag (not
 * half) until every subscriber is under that again, so the advice does not flap on and off around one
 * threshold; it repeats at most once per window while a subscriber is still behind. A subscriber that received nothing at all is stalled, not slow; lowering the bitrate would
 * not help it, and the lag bound cuts it off.
 */
export class DeliveryMeter {
  private readonly streams = new Map<string, StreamDeliveries>();

  constructor(private readonly windowMs: number) {}

  /** Starts counting one subscriber of `key`'s stream; `close` once its call ends. */
  subscriber(key: StreamKey, who: string, nowMs: number): SubscriberDelivery {
    const stream = streamKeyString(key);
    let deliveries = this.streams.get(stream);
    if (!deliveries) this.streams.set(stream, (deliveries = new StreamDeliveries(this.windowMs, nowMs)));
    const meters = deliveries;
    const subscriber = new SubscriberDelivery(who, nowMs, this.windowMs, () => {
      meters.subscribers.delete(subscriber);
      if (meters.subscribers.size === 0) this.streams.delete(stream);
    });
    deliveries.subscribers.add(subscriber);
    return subscriber;
  }

  /** The producer of `key`'s stream stored `bytes` at `nowMs`: advice when a subscriber falls behind, else undefined. */
  produced(key: StreamKey, bytes: number, nowMs: number): AdaptBitrate | undefined {
    const deliveries = this.streams.get(streamKeyString(key));
    if (!deliveries) return undefined;
    deliveries.produced.add(bytes, nowMs);
    // Lag is judged against the previous append: no subscriber can have received this one yet.
    const advice = nowMs - deliveries.judgedAtMs >= this.windowMs ? deliveries.judge(nowMs) : undefined;
    deliveries.newestStoredAtMs = nowMs;
    return advice;
  }
}

/** Who a subscriber is, as the advice names it. */
export function subscriberClass(principal: Principal): string {
  return principal.run ? `agent ${principal.run.nodeId} of run ${principal.run.runId}` : `user ${principal.user}`;
}

/** One subscriber's deliveries. */
export class SubscriberDelivery {
  readonly delivered: WindowedBytes;
  /** Store time of the newest data event handed to this subscriber's connection. */
  lastStoredAtMs: number | undefined;

  constructor(
    readonly who: string,
    readonly subscribedAtMs: number,
    windowMs: number,
    readonly close: () => void,
  ) {
    this.delivered = new WindowedBytes(windowMs * HORIZON_WINDOWS, subscribedAtMs);
  }

  deliveredData(bytes: number, storedAtMs: number, nowMs: number): void {
    this.delivered.add(bytes, nowMs);
    this.lastStoredAtMs = storedAtMs;
  }
}

class StreamDeliveries {
  readonly subscribers = new Set<SubscriberDelivery>();
  readonly produced: WindowedBytes;
  newestStoredAtMs: number | undefined;
  judgedAtMs: number;
  private behind = false;

  constructor(
    private readonly windowMs: number,
    nowMs: number,
  ) {
    this.produced = new WindowedBytes(windowMs * HORIZON_WINDOWS, nowMs);
    // The produced rate is known only a window after the first subscriber came.
    this.judgedAtMs = nowMs;
  }

  judge(nowMs: number): AdaptBitrate | undefined {
    this.judgedAtMs = nowMs;
    const producedBps = this.produced.bitsPerSecond(nowMs);
    const spanMs = this.produced.spanMs(nowMs);
    const behindAfterMs = this.behind ? this.windowMs / 4 : this.windowMs / 2;
    let slowest: { who: string; bps: number; lagMs: number } | undefined;
    let worstLagMs = 0;
    for (const subscriber of this.subscribers) {
      const lagMs = Math.max(0, (this.newestStoredAtMs ?? nowMs) - (subscriber.lastStoredAtMs ?? subscriber.subscribedAtMs));
      worstLagMs = Math.max(worstLagMs, lagMs);
      if (nowMs - subscriber.subscribedAtMs < this.windowMs) continue;
      const bps = subscriber.delivered.bitsPerSecond(nowMs);
      const fallingBehind = bps > 0 && bps < producedBps * BEHIND_FRACTION && lagMs > behindAfterMs;
      if (fallingBehind && (!slowest || bps < slowest.bps)) slowest = { who: subscriber.who, bps, lagMs };
    }
    if (!slowest) {
      if (worstLagMs < this.windowMs / 4) this.behind = false;
      return undefined;
    }
    this.behind = true;
    const suggested = Math.floor(slowest.bps * SUGGESTED_FRACTION);
    return create(AdaptBitrateSchema, {
      measuredBitsPerSecond: BigInt(slowest.bps),
      suggestedBitsPerSecond: BigInt(suggested),
      producedBitsPerSecond: BigInt(producedBps),
      subscriber: slowest.who,
      reason:
        `subscriber ${slowest.who} receives ${kbps(slowest.bps)} kbit/s of the ${kbps(producedBps)} kbit/s produced over the last ` +
        `${(spanMs / 1000).toFixed(1)} s and is ${(slowest.lagMs / 1000).toFixed(1)} s behind; lower the encoder bitrate to at most ${kbps(suggested)} kbit/s`,
    });
  }
}

/** Bytes over a sliding window of `horizonMs` (or since `startMs`, when that is shorter), in `BUCKETS` time buckets. */
export class WindowedBytes {
  private readonly buckets = new Float64Array(BUCKETS);
  private readonly bucketMs: number;
  private current: number | undefined;

  constructor(
    private readonly horizonMs: number,
    private readonly startMs: number,
  ) {
    this.bucketMs = horizonMs / BUCKETS;
  }

  add(bytes: number, nowMs: number): void {
    const i = this.advance(nowMs) % BUCKETS;
    this.buckets[i] = (this.buckets[i] ?? 0) + bytes;
  }

  /** The span the rate is measured over: the horizon, or less while it has not been running that long. */
  spanMs(nowMs: number): number {
    return Math.max(1, Math.min(this.horizonMs, nowMs - this.startMs));
  }

  bitsPerSecond(nowMs: number): number {
    this.advance(nowMs);
    let total = 0;
    for (const bytes of this.buckets) total += bytes;
    return Math.floor((total * 8 * 1000) / this.spanMs(nowMs));
  }

  /** Moves to `nowMs`'s bucket, emptying the buckets passed over; returns its absolute index. */
  private advance(nowMs: number): number {
    const bucket = Math.floor(nowMs / this.bucketMs);
    const from = this.current === undefined ? bucket : this.current + 1;
    for (let b = Math.max(from, bucket - BUCKETS + 1); b <= bucket; b++) this.buckets[b % BUCKETS] = 0;
    if (this.current === undefined || bucket > this.current) this.current = bucket;
    return this.current;
  }
}

function kbps(bitsPerSecond: number): string {
  return (bitsPerSecond / 1000).toFixed(0);
}
