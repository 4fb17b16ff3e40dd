import { Code, ConnectError } from "@connectrpc/connect";
import { BackpressurePolicy } from "../../gen/mentatlab/v1/common_pb.js";
import type { StreamConsumer, StreamInfo } from "../../gen/mentatlab/v1/stream_pb.js";
import { NEVER_ATTACHED } from "./consumer-state.js";
import type { StreamRecord } from "./stream-store.js";

/** The service's side of flow control: defaults and what retention can hold. */
export interface FlowControlLimits {
  /** Window of a consumer that declares none, in payload bytes. */
  readonly defaultWindowBytes: number;
  /** Retained payload bytes per stream: a window is capped at half of it, so what a consumer has yet to read stays retained. */
  readonly retainedMaxBytes: number;
  /** Retained events per stream: a consumer counts as behind at half of them, however small the events. */
  readonly retainedMaxEvents: number;
  /** How long a consumer whose subscriptions all ended still counts, so a reconnecting one keeps its hold. */
  readonly detachGraceMs: number;
}

/** A declared consumer behind its window, and by how much. */
export interface ConsumerLag {
  readonly consumer: StreamConsumer;
  readonly windowBytes: number;
  readonly lagBytes: bigint;
}

/** Consumers whose pace the stream follows (block or fail); drop_oldest ones are ordinary subscribers. */
export function pacedConsumers(info: StreamInfo, policy: BackpressurePolicy.BLOCK | BackpressurePolicy.FAIL): StreamConsumer[] {
  return info.consumers.filter((c) => c.policy === policy);
}

/**
 * The declared block/fail consumer a subscription with this principal's run token reads for, if any:
 * only the run token of that node of the stream's own run, so no other subscriber can hold back or
 * fail a producer.
 */
export function consumerOf(info: StreamInfo, run: { readonly runId: string; readonly nodeId: string } | undefined): StreamConsumer | undefined {
  if (!run || run.runId === "" || run.runId !== info.runId) return undefined;
  return info.consumers.find((c) => c.nodeId === run.nodeId && (c.policy === BackpressurePolicy.BLOCK || c.policy === BackpressurePolicy.FAIL));
}

export function windowBytesOf(consumer: StreamConsumer, limits: FlowControlLimits): number {
  const declared = consumer.windowBytes > 0n ? Number(consumer.windowBytes) : limits.defaultWindowBytes;
  return Math.max(1, Math.min(declared, Math.floor(limits.retainedMaxBytes / 2)));
}

interface Position {
  readonly consumer: StreamConsumer;
  readonly windowBytes: number;
  readonly lagBytes: bigint;
  readonly lagEvents: bigint;
}

/** Where each of `consumers` attached now (or detached within the grace period) stands against the newest event. */
function positions(record: StreamRecord, consumers: readonly StreamConsumer[], limits: FlowControlLimits, nowMs: number): Position[] {
  return consumers.flatMap((consumer) => {
    const state = record.consumers.get(consumer.nodeId) ?? NEVER_ATTACHED;
    const counts = state.attached > 0 || (state.detachedAtMs > 0 && nowMs - state.detachedAtMs < limits.detachGraceMs);
    if (!counts) return [];
    const lagBytes = record.info.bytesPublished - state.bytes;
    return [{ consumer, windowBytes: windowBytesOf(consumer, limits), lagBytes, lagEvents: record.info.lastSeq - state.seq }];
  });
}

function tooManyEvents(position: Position, limits: FlowControlLimits): boolean {
  return position.lagEvents * 2n > BigInt(limits.retainedMaxEvents);
}

/**
 * How many more payload bytes the producer may store before one of `consumers` is more than its
 * window behind: the smallest credit among those that count (see `positions`); 0 when one is at or
 * past its window, or half the retained events behind. Infinity when none counts.
 */
export function creditBytes(record: StreamRecord, consumers: readonly StreamConsumer[], limits: FlowControlLimits, nowMs: number): number {
  let credit = Infinity;
  for (const position of positions(record, consumers, limits, nowMs)) {
    const left = tooManyEvents(position, limits) ? 0 : position.windowBytes - Number(position.lagBytes);
    credit = Math.min(credit, Math.max(0, left));
  }
  return credit;
}

/** The first of `consumers` that counts and is more than its window (or half the retained events) behind. */
export function firstBehind(record: StreamRecord, consumers: readonly StreamConsumer[], limits: FlowControlLimits, nowMs: number): ConsumerLag | undefined {
  return positions(record, consumers, limits, nowMs).find((p) => p.lagBytes > BigInt(p.windowBytes) || tooManyEvents(p, limits));
}

/**
 * What a stream whose `fail` consumer fell behind ends with, and what its producer's call fails with:
 * FAILED_PRECONDITION, which producers do not retry (the edge's condition no longer holds).
 */
export function consumerFellBehind(streamId: string, lag: ConsumerLag): ConnectError {
  return new ConnectError(
    `downstream agent "${lag.consumer.nodeId}" fell ${lag.lagBytes} bytes behind stream "${streamId}", more than its ` +
      `${lag.windowBytes}-byte window, and its edge says \`backpressure: fail\`; make it read faster, raise ` +
      "backpressure_window_bytes, or use `backpressure: block` to slow the producer down instead",
    Code.FailedPrecondition,
  );
}
