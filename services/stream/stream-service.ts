import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import {
  type AdaptBitrate,
  type PublishAck,
  PublishAckSchema,
  type PublishRequest,
  type PublishResponse,
  PublishResponseSchema,
  StreamAnnouncementKind,
  type StreamFilter,
  type StreamInfo,
  StreamInfoSchema,
  type StreamConsumer,
  type StreamPayload,
  StreamService,
  StreamState,
} from "../../gen/mentatlab/v1/stream_pb.js";
import { type Principal, principalOf } from "../shared/principal.js";
import { hasAdaptableBitrate, isTextual, recommendedChunkBytes } from "./chunking.js";
import type { StreamConfig } from "./config.js";
import type { DeliveryMeter } from "./delivery-meter.js";
import { streamEnded, streamNotFound } from "./errors.js";
import { matchesList } from "./list-filter.js";
import type { StreamMetrics } from "./metrics.js";
import { ReadAhead } from "./read-ahead.js";
import type { AppendResult, ListQuery, PayloadInput, StreamKey, StreamRecord, StreamStore } from "./stream-store.js";
import { isStreamId, newStreamId } from "./stream-id.js";
import { openSubscription } from "./subscription.js";
import type { FlowControlLimits } from "./flow-control.js";
import { ProducerPacing } from "./producer-pacing.js";
import { isWholeUtf8 } from "./text-encoding.js";

export type StreamLimits = Pick<
  StreamConfig,
  "maxOpenStreamsPerUser" | "maxDurationMs" | "retainedMaxBytes" | "retainedMaxEvents" | "backpressureWindowBytes" | "backpressureDetachGraceMs"
>;

export interface StreamServiceOptions {
  readonly store: StreamStore;
  readonly limits: StreamLimits;
  readonly metrics: StreamMetrics;
  /** What each subscriber receives, against which audio/video producers are advised. */
  readonly deliveries: DeliveryMeter;
  /** Path of the Server-Sent Events view, given a stream id. */
  readonly ssePath: (streamId: string) => string;
}

export const PUBLISH_PROCEDURE = `/${StreamService.typeName}/${StreamService.method.publish.name}`;
export const SUBSCRIBE_PROCEDURE = `/${StreamService.typeName}/${StreamService.method.subscribe.name}`;
const DEFAULT_PAGE_SIZE = 50;
const WATCH_PAGE_SIZE = 500;
// Bounds what one Publish call buffers ahead of storage and stores per round trip.
const PUBLISH_READ_AHEAD_BYTES = 8 * 1024 * 1024;
const PUBLISH_BATCH_ITEMS = 256;
// Lua and JavaScript numbers hold client sequence numbers exactly up to here.
const MAX_CLIENT_SEQ = BigInt(Number.MAX_SAFE_INTEGER);
// A producer that closes with an error message gave up on its stream: subscribers see `aborted`.
const PRODUCER_CLOSED_CODE = Code.Aborted;

const MIME_PREFIX: Partial<Record<PinType, { prefix: RegExp; example: string; fallback?: string }>> = {
  [PinType.TEXT]: { prefix: /^text\//, example: "text/plain", fallback: "text/plain; charset=utf-8" },
  [PinType.JSON]: { prefix: /^application\/([\w.+-]+\+)?json\b|^application\/x-ndjson\b/, example: "application/json", fallback: "application/json" },
  [PinType.AUDIO]: { prefix: /^audio\//, example: "audio/wav" },
  [PinType.VIDEO]: { prefix: /^video\//, example: "video/mp4" },
  [PinType.BINARY]: { prefix: /^[\w.+-]+\/[\w.+-]+/, example: "application/octet-stream", fallback: "application/octet-stream" },
};

export function createStreamService(options: StreamServiceOptions): ServiceImpl<typeof StreamService> {
  const { store, limits, metrics, deliveries } = options;
  const flowLimits: FlowControlLimits = {
    defaultWindowBytes: limits.backpressureWindowBytes,
    retainedMaxBytes: limits.retainedMaxBytes,
    retainedMaxEvents: limits.retainedMaxEvents,
    detachGraceMs: limits.backpressureDetachGraceMs,
  };

  async function ownStream(principal: Principal, streamId: string): Promise<StreamRecord> {
    const record = await store.get({ workspace: principal.workspace, id: streamId });
    if (!record) throw streamNotFound(streamId);
    if (record.info.owner !== principal.user) {
      throw new ConnectError(`stream "${streamId}" belongs to "${record.info.owner}"; only its creator may publish to or close it`, Code.PermissionDenied);
    }
    if (principal.run && record.info.runId !== principal.run.runId) {
      throw new ConnectError(`stream "${streamId}" is not an output of run "${principal.run.runId}"`, Code.PermissionDenied);
    }
    if (record.info.state !== StreamState.OPEN) throw streamEnded(streamId, record.info.state);
    return record;
  }

  /** Stores payloads, then fails the stream if a `fail` consumer is now more than its window behind. */
  async function append(key: StreamKey, payloads: PayloadInput[], now: number, pacing: ProducerPacing): Promise<AppendResult> {
    let result: AppendResult;
    try {
      result = await store.append(key, payloads, now);
    } catch (err) {
      if (ConnectError.from(err).code === Code.DeadlineExceeded) metrics.countEnd(true);
      throw err;
    }
    metrics.streamBandwidthBytes.published += result.appendedBytes;
    const failed = await pacing.endIfConsumerBehind();
    if (failed) {
      metrics.countEnd(true);
      throw failed;
    }
    return result;
  }

  return {
    async initStream(request, ctx) {
      const principal = principalOf(ctx);
      const mimeType = checkedMimeType(request.payloadType, request.mimeType);
      if (principal.run && request.runId !== principal.run.runId) {
        throw new ConnectError(
          `a sidecar of run "${principal.run.runId}" may only create streams with run_id "${principal.run.runId}", got "${request.runId}"`,
          Code.PermissionDenied,
        );
      }
      checkConsumers(principal, request.consumers);
      const now = Date.now();
      const id = newStreamId(now);
      const info = create(StreamInfoSchema, {
        ref: {
          streamId: id,
          workspace: principal.workspace,
          payloadType: request.payloadType,
          mimeType,
          ssePath: options.ssePath(id),
        },
        owner: principal.user,
        runId: request.runId,
        nodeId: request.nodeId,
        pin: request.pin,
        labels: request.labels,
        consumers: request.consumers,
      });
      const stream = await store.create(info, now + limits.maxDurationMs, limits.maxOpenStreamsPerUser, now);
      return {
        stream,
        publishProcedure: PUBLISH_PROCEDURE,
        subscribeProcedure: SUBSCRIBE_PROCEDURE,
        recommendedChunkBytes: recommendedChunkBytes(request.payloadType),
      };
    },

    async *publish(requests, ctx) {
      const principal = principalOf(ctx);
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done) return;
      if (first.value.part.case !== "open") {
        throw new ConnectError("the first Publish message must be `open` with the stream_id", Code.InvalidArgument);
      }
      const streamId = first.value.part.value.streamId;
      const record = await ownStream(principal, streamId);
      const key = { workspace: principal.workspace, id: streamId };
      const payloadType = record.info.ref?.payloadType ?? PinType.BINARY;
      // The first ack tells a reconnecting producer where to resume.
      yield ackResponse({ lastSeq: record.info.lastSeq, lastClientSeq: record.lastClientSeq });
      const adaptable = hasAdaptableBitrate(payloadType);
      const pacing = new ProducerPacing(store, key, record.info, flowLimits);
      const readAhead = new ReadAhead<PublishRequest>(iterator, publishRequestBytes, pacing.readAheadBytes(PUBLISH_READ_AHEAD_BYTES));
      for (;;) {
        // Held here while a `block` consumer is a window behind: reads stop, so HTTP/2 flow control pushes back.
        const credit = await pacing.credit(ctx.signal);
        const batch = await readAhead.nextBatch(PUBLISH_BATCH_ITEMS, credit);
        if (!batch) return;
        ctx.signal.throwIfAborted();
        const payloads = batch.map((message) => {
          if (message.part.case !== "data") {
            throw new ConnectError("send `open` only once, as the first Publish message", Code.InvalidArgument);
          }
          return message.part.value;
        });
        const inputs = checkedPayloads(payloadType, payloads);
        const now = Date.now();
        const result = await append(key, inputs, now, pacing);
        yield ackResponse(result);
        const advice = adaptable ? deliveries.produced(key, result.appendedBytes, now) : undefined;
        if (advice) yield adaptResponse(advice);
      }
    },

    async publishBatch(request, ctx) {
      const principal = principalOf(ctx);
      const record = await ownStream(principal, request.streamId);
      const payloadType = record.info.ref?.payloadType ?? PinType.BINARY;
      const inputs = checkedPayloads(payloadType, request.payloads);
      const key = { workspace: principal.workspace, id: request.streamId };
      const pacing = new ProducerPacing(store, key, record.info, flowLimits);
      await pacing.credit(ctx.signal);
      const now = Date.now();
      const result = await append(key, inputs, now, pacing);
      const adaptBitrate = hasAdaptableBitrate(payloadType) ? deliveries.produced(key, result.appendedBytes, now) : undefined;
      return { ack: ack(result), adaptBitrate };
    },

    async *subscribe(request, ctx) {
      const subscription = await openSubscription(store, metrics, deliveries, principalOf(ctx), request, ctx.signal);
      try {
        // The feed stops by throwing when ctx.signal aborts, never by returning: no silent truncation.
        for await (const event of subscription.feed.events) yield subscription.deliver(event);
      } finally {
        subscription.close();
      }
    },

    async closeStream(request, ctx) {
      const principal = principalOf(ctx);
      await ownStream(principal, request.streamId);
      const failed = request.errorMessage !== "";
      const stream = await store.end(
        { workspace: principal.workspace, id: request.streamId },
        failed ? { error: { message: request.errorMessage, code: PRODUCER_CLOSED_CODE } } : {},
        Date.now(),
      );
      metrics.countEnd(failed);
      return { stream };
    },

    async getStream(request, ctx) {
      const principal = principalOf(ctx);
      const record = await store.get({ workspace: principal.workspace, id: request.streamId });
      if (!record) throw streamNotFound(request.streamId);
      return { stream: record.info };
    },

    async listStreams(request, ctx) {
      const principal = principalOf(ctx);
      if (request.pageToken !== "" && !isStreamId(request.pageToken)) {
        throw new ConnectError("page_token is not one this service issued; pass next_page_token from the previous response unchanged", Code.InvalidArgument);
      }
      const page = await store.list(principal.workspace, {
        ...filterOf(request.filter),
        pageSize: request.pageSize === 0 ? DEFAULT_PAGE_SIZE : request.pageSize,
        cursor: request.pageToken,
      });
      return { streams: page.streams, nextPageToken: page.nextCursor };
    },

    async *watchStreams(request, ctx) {
      const principal = principalOf(ctx);
      const filter = filterOf(request.filter);
      const wanted = (state: StreamState) => filter.states.length === 0 || filter.states.includes(state);
      const everyMatching = (states: StreamState[]) => listAll(store, principal.workspace, { ...filter, states });
      // Subscribe before listing, so a stream opening in between is announced rather than missed.
      const live = await store.announcements(principal.workspace, ctx.signal);
      const announced = new Set<string>();
      if (wanted(StreamState.OPEN)) {
        for await (const stream of everyMatching([StreamState.OPEN])) {
          announced.add(stream.ref?.streamId ?? "");
          yield { kind: StreamAnnouncementKind.AVAILABLE, stream };
        }
      }
      const endedStates = [StreamState.COMPLETED, StreamState.FAILED].filter(wanted);
      if (request.endedAfter && endedStates.length > 0) {
        const afterMs = timestampMs(request.endedAfter);
        for await (const stream of everyMatching(endedStates)) {
          if (stream.endedAt && timestampMs(stream.endedAt) > afterMs) yield { kind: StreamAnnouncementKind.ENDED, stream };
        }
      }
      for await (const announcement of live) {
        ctx.signal.throwIfAborted();
        const id = announcement.stream.ref?.streamId ?? "";
        if (announcement.kind === StreamAnnouncementKind.AVAILABLE && announced.has(id)) continue;
        if (announcement.kind === StreamAnnouncementKind.ENDED) announced.delete(id);
        if (matchesList(announcement.stream, filter)) yield announcement;
      }
    },
  };
}

/** Every stream of `workspace` the query matches, page by page. */
async function* listAll(store: StreamStore, workspace: string, query: Omit<ListQuery, "pageSize" | "cursor">): AsyncGenerator<StreamInfo> {
  let cursor = "";
  do {
    const page = await store.list(workspace, { ...query, pageSize: WATCH_PAGE_SIZE, cursor });
    yield* page.streams;
    cursor = page.nextCursor;
  } while (cursor !== "");
}

function filterOf(filter: StreamFilter | undefined): { runId: string; owner: string; states: StreamState[] } {
  return { runId: filter?.runId ?? "", owner: filter?.owner ?? "", states: filter?.states ?? [] };
}

/**
 * Consumers decide whose pace a producer follows, so only a run's own token may declare them (its
 * streams' run_id is checked to be that run), each node once.
 */
function checkConsumers(principal: Principal, consumers: readonly StreamConsumer[]): void {
  if (consumers.length === 0) return;
  if (!principal.run) {
    throw new ConnectError(
      "consumers may only be declared with a run token (the orchestrator or sidecar opening a run's stream); leave them out",
      Code.PermissionDenied,
    );
  }
  const seen = new Set<string>();
  for (const [index, consumer] of consumers.entries()) {
    if (seen.has(consumer.nodeId)) {
      throw new ConnectError(`consumers[${index}].node_id "${consumer.nodeId}" is declared twice; declare each downstream node once`, Code.InvalidArgument);
    }
    seen.add(consumer.nodeId);
  }
}

function checkedMimeType(payloadType: PinType, mimeType: string): string {
  const rule = MIME_PREFIX[payloadType];
  if (!rule) {
    throw new ConnectError(`payload_type ${PinType[payloadType]} cannot be streamed; use TEXT, JSON, BINARY, AUDIO or VIDEO`, Code.InvalidArgument);
  }
  const kind = PinType[payloadType].toLowerCase();
  if (mimeType === "") {
    if (rule.fallback) return rule.fallback;
    throw new ConnectError(`mime_type is required for ${kind} streams, e.g. "${rule.example}"`, Code.InvalidArgument);
  }
  if (!rule.prefix.test(mimeType.toLowerCase())) {
    throw new ConnectError(`mime_type "${mimeType}" does not describe ${kind}; use a type such as "${rule.example}"`, Code.InvalidArgument);
  }
  return mimeType;
}

/** Checks every payload before any is stored, so a bad one leaves the stream untouched. */
function checkedPayloads(payloadType: PinType, payloads: readonly StreamPayload[]): PayloadInput[] {
  let previousClientSeq = 0n;
  return payloads.map((payload, index) => {
    if (payload.clientSeq > MAX_CLIENT_SEQ) {
      throw new ConnectError(`payloads[${index}].client_seq exceeds ${MAX_CLIENT_SEQ}; count from 1`, Code.InvalidArgument);
    }
    if (payload.clientSeq !== 0n) {
      if (payload.clientSeq <= previousClientSeq) {
        throw new ConnectError(
          `payloads[${index}].client_seq ${payload.clientSeq} does not increase (previous ${previousClientSeq}); number payloads 1, 2, 3, ...`,
          Code.InvalidArgument,
        );
      }
      previousClientSeq = payload.clientSeq;
    }
    if (isTextual(payloadType) && !isWholeUtf8(payload.data)) {
      throw new ConnectError(
        `payloads[${index}].data is not valid UTF-8; text streams carry whole characters, so split chunks on character boundaries`,
        Code.InvalidArgument,
      );
    }
    return { data: payload.data, clientSeq: payload.clientSeq, attributes: payload.attributes };
  });
}

function publishRequestBytes(message: PublishRequest): number {
  return message.part.case === "data" ? message.part.value.data.byteLength : 0;
}

function ack(result: Pick<AppendResult, "lastSeq" | "lastClientSeq">): PublishAck {
  return create(PublishAckSchema, { lastSeq: result.lastSeq, lastClientSeq: result.lastClientSeq });
}

function ackResponse(result: Pick<AppendResult, "lastSeq" | "lastClientSeq">): PublishResponse {
  return create(PublishResponseSchema, { event: { case: "ack", value: ack(result) } });
}

function adaptResponse(advice: AdaptBitrate): PublishResponse {
  return create(PublishResponseSchema, { event: { case: "adaptBitrate", value: advice } });
}
