import { create, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { type StreamEvent, StreamEndSchema, StreamErrorSchema, StreamInfoSchema, StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { permissionRefusal } from "../shared/auth/method-permission.js";
import type { HttpRoute, HttpRouteContext } from "../shared/http-route.js";
import { isTextual } from "./chunking.js";
import { codeName } from "./events.js";
import { countDelivery, openFeed } from "./feed.js";
import type { StreamMetrics } from "./metrics.js";
import type { StreamStore } from "./stream-store.js";

export const SSE_PATH_PREFIX = "/streams/";

export function ssePath(streamId: string): string {
  return `${SSE_PATH_PREFIX}${encodeURIComponent(streamId)}/events`;
}

const SSE_PATH = /^\/streams\/([^/]+)\/events$/;
const SEQ = /^\d{1,16}$/;
const encoder = new TextEncoder();

/**
 * `GET /streams/{id}/events`: a stream as Server-Sent Events for `curl -N` and the browser's
 * EventSource. `id:` is the seq, so EventSource's automatic `Last-Event-ID` resumes without loss;
 * after the stream's end a reconnect gets 204, which tells EventSource to stop.
 */
export function createSseRoute(store: StreamStore, metrics: StreamMetrics, keepaliveMs: number): HttpRoute {
  return {
    method: "GET",
    pathPrefix: SSE_PATH_PREFIX,
    async handle(request: Request, context: HttpRouteContext): Promise<Response> {
      try {
        return await serve(request, context);
      } catch (err) {
        return errorResponse(ConnectError.from(err));
      }
    },
  };

  async function serve(request: Request, context: HttpRouteContext): Promise<Response> {
    const principal = context.principal;
    if (!principal) {
      throw new ConnectError("send `Authorization: Bearer <api key>` to read a stream", Code.Unauthenticated);
    }
    // The event view hands out what Subscribe does, so it needs what Subscribe needs.
    const refusal = permissionRefusal(principal, StreamService.method.subscribe);
    if (refusal) throw refusal;
    const url = new URL(request.url);
    const match = SSE_PATH.exec(url.pathname);
    if (!match?.[1]) {
      throw new ConnectError(`no such stream view: use ${SSE_PATH_PREFIX}{stream_id}/events`, Code.NotFound);
    }
    const streamId = decodeURIComponent(match[1]);
    const afterSeq = resumeSeq(request.headers.get("last-event-id"), url.searchParams.get("after_seq"));
    const stop = new AbortController();
    const signal = AbortSignal.any([context.signal, stop.signal]);
    const feed = await openFeed(store, { workspace: principal.workspace, id: streamId }, afterSeq, signal);
    const textual = isTextual(feed.stream.ref?.payloadType ?? PinType.BINARY);
    if (feed.complete) return new Response(null, { status: 204 });
    const events = feed.events[Symbol.asyncIterator]();
    let pending: Promise<IteratorResult<StreamEvent>> | undefined;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        pending ??= events.next();
        let timer: NodeJS.Timeout | undefined;
        const keepalive = new Promise<"keepalive">((resolve) => {
          timer = setTimeout(() => resolve("keepalive"), keepaliveMs);
        });
        try {
          const next = await Promise.race([pending, keepalive]);
          if (next === "keepalive") {
            controller.enqueue(encoder.encode(": keepalive\n\n"));
            return;
          }
          pending = undefined;
          if (next.done) {
            controller.close();
            return;
          }
          countDelivery(metrics, next.value, feed.subscribedAtMs);
          controller.enqueue(encoder.encode(formatEvent(next.value, textual)));
        } catch (err) {
          // The client reconnects with Last-Event-ID and is then answered with a proper HTTP error.
          controller.enqueue(encoder.encode(`: ${ConnectError.from(err).rawMessage.replace(/[\r\n]+/g, " ")}\n\n`));
          controller.close();
        } finally {
          clearTimeout(timer);
        }
      },
      async cancel() {
        stop.abort(new ConnectError("the client closed the event stream", Code.Canceled));
        await events.return?.().catch(() => undefined);
      },
    });
    return new Response(body, {
      status: 200,
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-store",
        "x-accel-buffering": "no",
      },
    });
  }
}

function resumeSeq(lastEventId: string | null, afterSeqParam: string | null): bigint {
  // EventSource resends the original URL on reconnect, so the header it adds must win over the query.
  const [name, raw] = lastEventId !== null ? ["Last-Event-ID", lastEventId.trim()] : ["after_seq", afterSeqParam];
  if (raw === null || raw === "") return 0n;
  if (!SEQ.test(raw)) {
    throw new ConnectError(`${name} must be a sequence number (a non-negative integer), got "${raw}"`, Code.InvalidArgument);
  }
  return BigInt(raw);
}

const EVENT_NAMES = { start: "stream_start", data: "stream_data", end: "stream_end", error: "stream_error" } as const;

/** One SSE event: text payloads as UTF-8, other payloads as base64, the rest as JSON. */
export function formatEvent(event: StreamEvent, textual: boolean): string {
  let data: string;
  switch (event.event.case) {
    case "start":
      data = JSON.stringify(toJson(StreamInfoSchema, event.event.value.stream ?? create(StreamInfoSchema)));
      break;
    case "data": {
      const bytes = event.event.value.data;
      data = textual ? new TextDecoder().decode(bytes) : Buffer.from(bytes).toString("base64");
      break;
    }
    case "end":
      data = JSON.stringify(toJson(StreamEndSchema, event.event.value));
      break;
    case "error":
      data = JSON.stringify(toJson(StreamErrorSchema, event.event.value));
      break;
    default:
      return "";
  }
  const name = EVENT_NAMES[event.event.case];
  const lines = data
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}\n`)
    .join("");
  return `id: ${event.seq}\nevent: ${name}\n${lines}\n`;
}

export function errorResponse(error: ConnectError): Response {
  return new Response(JSON.stringify({ code: codeName(error.code), message: error.rawMessage }), {
    status: codeToHttpStatus(error.code),
    headers: { "content-type": "application/json" },
  });
}
