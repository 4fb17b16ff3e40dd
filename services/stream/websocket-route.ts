import { create, type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import {
  CloseStreamRequestSchema,
  type PublishRequest,
  PublishRequestSchema,
  type PublishResponseSchema,
  type StreamEvent,
  StreamEventSchema,
  StreamInfoSchema,
  StreamService,
  SubscribeRequestSchema,
} from "../../gen/mentatlab/v1/stream_pb.js";
import type { HttpRouteContext } from "../shared/http-route.js";
import type { Principal } from "../shared/principal.js";
import type { UpgradeRoute } from "../shared/upgrade-route.js";
import { messageValidator } from "../shared/validation.js";
import { directCallContext } from "./direct-call.js";
import { codeName } from "./events.js";
import { SSE_PATH_PREFIX } from "./sse-route.js";
import type { StreamTicketSigner } from "./stream-ticket.js";
import { attributesField, type Frame, FrameReader, frameType, seqField } from "./websocket-frames.js";
import type { WebSocketConfig } from "./websocket-config.js";

const WS_PATH = /^\/streams\/([^/]+)\/ws$/;
/** StreamPayload.data's own limit: a larger binary frame is refused by ws with 1009 (message too big). */
const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
/** Payload frames received but not yet taken by Publish before the socket stops being read. */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
/** Bytes queued for a subscriber's socket before the next event waits for them to drain. */
const SEND_BUFFER_BYTES = 1024 * 1024;
/** Application close codes are 4000 + the Connect code (4003 invalid_argument, 4016 unauthenticated, ...). */
const APPLICATION_CLOSE_BASE = 4000;
const NORMAL_CLOSE = 1000;
const GOING_AWAY = 1001;
/** RFC 6455 allows 123 bytes of close reason; the full message travels in the `error` frame before it. */
const MAX_CLOSE_REASON_BYTES = 123;

type StreamImpl = Pick<ServiceImpl<typeof StreamService>, "publish" | "subscribe" | "closeStream">;

/**
 * `/streams/{id}/ws`: publish to or follow a stream over a WebSocket, the original design's event
 * names as JSON text frames and payloads as binary frames. It runs StreamService's own Publish,
 * CloseStream and Subscribe handlers as the caller, so acks, client_seq dedup, limits, slow-producer
 * advice, resume and permissions are theirs; see docs/websocket-streams.md for the frames.
 */
export function createWebSocketRoute(impl: StreamImpl, tickets: StreamTicketSigner, config: WebSocketConfig): UpgradeRoute {
  // Media payloads do not compress: no permessage-deflate.
  const server = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD_BYTES, perMessageDeflate: false });
  const validate = messageValidator();
  return {
    pathPrefix: SSE_PATH_PREFIX,
    handle(request: IncomingMessage, socket: Duplex, head: Buffer, context: HttpRouteContext) {
      const url = new URL(request.url ?? "/", "http://localhost");
      const streamId = decodeURIComponent(WS_PATH.exec(url.pathname)?.[1] ?? "");
      if (streamId === "") {
        socket.end(`HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\nno WebSocket here: use ${SSE_PATH_PREFIX}{stream_id}/ws\n`);
        return;
      }
      server.handleUpgrade(request, socket, head, (ws) => {
        void serve(ws, { streamId, url, hasAuthorization: request.headers.authorization !== undefined, context });
      });
    },
  };

  async function serve(ws: WebSocket, call: Call): Promise<void> {
    // Protocol errors (a frame over the limit, bad UTF-8 in a text frame) are closed by ws itself with
    // their RFC 6455 code (1009, 1007, 1002); the error event only repeats that.
    ws.on("error", () => undefined);
    const gone = new AbortController();
    ws.once("close", () => gone.abort(new ConnectError("the client closed the WebSocket", Code.Canceled)));
    const signal = AbortSignal.any([gone.signal, call.context.signal]);
    const onShutdown = () => close(ws, GOING_AWAY, "server is shutting down; reconnect and resume");
    call.context.signal.addEventListener("abort", onShutdown, { once: true });
    ws.once("close", () => call.context.signal.removeEventListener("abort", onShutdown));
    keepAlive(ws, config.pingMs);
    const frames = new FrameReader(ws, RECEIVE_BUFFER_BYTES);
    try {
      const principal = callerOf(call);
      const first = await frames.next();
      if (!first) return;
      const type = first.kind === "text" ? frameType(first.value) : "";
      if (first.kind === "text" && type === "stream_start") {
        await publish(ws, frames, principal, call, signal);
      } else if (first.kind === "text" && type === "subscribe") {
        // A subscriber has nothing more to say: a further frame is a client bug, not something to queue.
        void frames.next().then((extra) => {
          if (extra) fail(ws, new ConnectError("send nothing after the subscribe frame; reconnect to change after_seq", Code.InvalidArgument));
        });
        await subscribe(ws, principal, call, seqField(first.value, "after_seq"), signal);
      } else {
        throw new ConnectError(
          'the first frame must be {"type": "stream_start"} to publish or {"type": "subscribe", "after_seq": 0} to follow',
          Code.InvalidArgument,
        );
      }
    } catch (err) {
      if (!gone.signal.aborted) fail(ws, ConnectError.from(err));
    }
  }

  function callerOf(call: Call): Principal {
    const ticket = call.url.searchParams.get("ticket");
    if (ticket !== null) {
      const verified = tickets.verify(ticket);
      if (!verified) {
        throw new ConnectError(
          `the ticket is invalid or expired; get a fresh ws_url from POST ${SSE_PATH_PREFIX}${call.streamId}/ticket`,
          Code.Unauthenticated,
        );
      }
      if (verified.streamId !== call.streamId) {
        throw new ConnectError(`the ticket is for stream "${verified.streamId}", not "${call.streamId}"`, Code.PermissionDenied);
      }
      return verified.principal;
    }
    if (call.context.principal) return call.context.principal;
    throw new ConnectError(
      call.hasAuthorization
        ? "the bearer key names nobody; send a configured API key"
        : "send `Authorization: Bearer <api key>`, or connect to the ws_url POST /streams/init returned (it carries ?ticket=)",
      Code.Unauthenticated,
    );
  }

  async function publish(ws: WebSocket, frames: FrameReader, principal: Principal, call: Call, signal: AbortSignal): Promise<void> {
    const ctx = directCallContext(principal, StreamService.method.publish, call.url.href, signal);
    const ending: { message?: string } = {};
    for await (const response of impl.publish(publishRequests(call.streamId, frames, ending), ctx)) {
      const frame = publishResponseFrame(response);
      if (frame) send(ws, frame);
    }
    // Publish returned: every payload sent is stored and acknowledged. A producer that said nothing
    // more went away and may reconnect to resume; one that sent stream_end or stream_error is done.
    if (ending.message === undefined) return;
    const closeCtx = directCallContext(principal, StreamService.method.closeStream, call.url.href, signal);
    const closed = await impl.closeStream(create(CloseStreamRequestSchema, { streamId: call.streamId, errorMessage: ending.message }), closeCtx);
    const lastSeq = closed.stream?.lastSeq ?? 0n;
    send(ws, JSON.stringify({ type: "closed", last_seq: Number(lastSeq) }));
    close(ws, NORMAL_CLOSE, "stream ended");
  }

  /** The Publish call's messages from the producer's frames; `ending` learns how the producer ended. */
  async function* publishRequests(streamId: string, frames: FrameReader, ending: { message?: string }): AsyncGenerator<PublishRequest> {
    yield create(PublishRequestSchema, { part: { case: "open", value: { streamId } } });
    for (;;) {
      const frame = await frames.next();
      if (!frame) return;
      let request: PublishRequest;
      if (frame.kind === "binary") {
        request = dataRequest(frame.bytes, 0n, {});
      } else {
        const type = frameType(frame.value);
        if (type === "stream_end" || type === "stream_error") {
          ending.message = type === "stream_error" ? errorMessageOf(frame.value) : "";
          return;
        }
        if (type !== "stream_data") {
          throw new ConnectError(`unexpected "${type}" frame; send stream_data, stream_end or stream_error`, Code.InvalidArgument);
        }
        const clientSeq = seqField(frame.value, "client_seq");
        const attributes = attributesField(frame.value);
        const payload = await payloadOf(frame.value, frames);
        // The socket closed between a header and its payload: that payload never arrived.
        if (!payload) return;
        request = dataRequest(payload, clientSeq, attributes);
      }
      validate(PublishRequestSchema, request);
      yield request;
    }
  }

  async function subscribe(ws: WebSocket, principal: Principal, call: Call, afterSeq: bigint, signal: AbortSignal): Promise<void> {
    const ctx = directCallContext(principal, StreamService.method.subscribe, call.url.href, signal);
    const request = create(SubscribeRequestSchema, { streamId: call.streamId, afterSeq });
    validate(SubscribeRequestSchema, request);
    for await (const event of impl.subscribe(request, ctx)) {
      await sendEvent(ws, create(StreamEventSchema, event));
    }
    close(ws, NORMAL_CLOSE, "stream ended");
  }
}

interface Call {
  readonly streamId: string;
  readonly url: URL;
  readonly hasAuthorization: boolean;
  readonly context: HttpRouteContext;
}

/** A stream_data header's payload: its inline `text`, or else the binary frame that follows it. */
async function payloadOf(header: Record<string, unknown>, frames: FrameReader): Promise<Uint8Array | undefined> {
  if (typeof header.text === "string") return new TextEncoder().encode(header.text);
  if (header.text !== undefined) throw new ConnectError('"text" must be a string', Code.InvalidArgument);
  const next: Frame | undefined = await frames.next();
  if (next === undefined) return undefined;
  if (next.kind !== "binary") {
    throw new ConnectError('a stream_data frame without "text" must be followed by one binary frame, its payload', Code.InvalidArgument);
  }
  return next.bytes;
}

function dataRequest(data: Uint8Array, clientSeq: bigint, attributes: Record<string, string>): PublishRequest {
  return create(PublishRequestSchema, { part: { case: "data", value: { data, clientSeq, attributes } } });
}

function errorMessageOf(frame: Record<string, unknown>): string {
  const message = frame.message;
  if (typeof message !== "string" || message === "") {
    throw new ConnectError('stream_error needs a non-empty "message" saying why the producer gave up', Code.InvalidArgument);
  }
  return message;
}

/** An ack or bitrate advice as its frame; undefined for a response with neither (none is sent today). */
function publishResponseFrame(response: MessageInitShape<typeof PublishResponseSchema>): string | undefined {
  const event = response.event;
  if (event?.case === "ack") {
    return JSON.stringify({ type: "ack", last_seq: Number(event.value.lastSeq ?? 0n), last_client_seq: Number(event.value.lastClientSeq ?? 0n) });
  }
  if (event?.case === "adaptBitrate") {
    return JSON.stringify({
      type: "adapt_bitrate",
      measured_bits_per_second: Number(event.value.measuredBitsPerSecond ?? 0n),
      suggested_bits_per_second: Number(event.value.suggestedBitsPerSecond ?? 0n),
      produced_bits_per_second: Number(event.value.producedBitsPerSecond ?? 0n),
      subscriber: event.value.subscriber ?? "",
      reason: event.value.reason ?? "",
    });
  }
  return undefined;
}

/** One event as the design's named frame; a stream_data header is followed by its payload as a binary frame. */
async function sendEvent(ws: WebSocket, event: StreamEvent): Promise<void> {
  const common = { seq: Number(event.seq), time: event.time ? timestampDate(event.time).toISOString() : undefined };
  switch (event.event.case) {
    case "start":
      send(ws, JSON.stringify({ type: "stream_start", ...common, stream: toJson(StreamInfoSchema, event.event.value.stream ?? create(StreamInfoSchema)) }));
      break;
    case "data":
      send(ws, JSON.stringify({ type: "stream_data", ...common, bytes: event.event.value.data.byteLength, attributes: event.event.value.attributes }));
      send(ws, event.event.value.data);
      break;
    case "end":
      send(
        ws,
        JSON.stringify({
          type: "stream_end",
          ...common,
          last_data_seq: Number(event.event.value.lastDataSeq),
          total_bytes: Number(event.event.value.totalBytes),
        }),
      );
      break;
    case "error":
      send(ws, JSON.stringify({ type: "stream_error", ...common, message: event.event.value.message, code: event.event.value.code }));
      break;
    default:
      return;
  }
  // A slow subscriber's socket fills up: wait for it to drain rather than queue without bound. Falling
  // too far behind the stream itself is the store's to judge (OUT_OF_RANGE, as for Subscribe).
  if (ws.bufferedAmount > SEND_BUFFER_BYTES) await drained(ws);
}

function send(ws: WebSocket, data: string | Uint8Array): void {
  if (ws.readyState === ws.OPEN) ws.send(data);
}

/** Resolves once everything queued so far was written to the socket (or the socket closed). */
function drained(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      ws.off("close", done);
      resolve();
    };
    ws.once("close", done);
    // An empty ping is queued behind everything sent so far; its callback fires once that is written.
    ws.ping(undefined, undefined, done);
  });
}

/** Sends the error in full as an `error` frame, then closes with 4000 + its Connect code. */
function fail(ws: WebSocket, error: ConnectError): void {
  send(ws, JSON.stringify({ type: "error", code: codeName(error.code), message: error.rawMessage }));
  close(ws, APPLICATION_CLOSE_BASE + error.code, error.rawMessage);
}

function close(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === ws.OPEN) ws.close(code, closeReason(reason));
}

function closeReason(reason: string): string {
  let cut = reason;
  while (Buffer.byteLength(cut) > MAX_CLOSE_REASON_BYTES) cut = cut.slice(0, -1);
  return cut;
}

/** Pings every `pingMs`; a client that did not answer the previous ping is cut off (the peer sees 1006). */
function keepAlive(ws: WebSocket, pingMs: number): void {
  let answered = true;
  ws.on("pong", () => {
    answered = true;
  });
  const timer = setInterval(() => {
    // While reading is paused for backpressure the pong cannot be seen: that is not a dead client.
    if (ws.isPaused) {
      answered = true;
      return;
    }
    if (!answered) {
      ws.terminate();
      return;
    }
    answered = false;
    ws.ping();
  }, pingMs);
  ws.once("close", () => clearInterval(timer));
}
