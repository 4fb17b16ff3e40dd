import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { InitStreamRequestSchema, StreamInfoSchema, StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { permissionRefusal } from "../shared/auth/method-permission.js";
import type { HttpRoute, HttpRouteContext } from "../shared/http-route.js";
import type { Principal } from "../shared/principal.js";
import { messageValidator } from "../shared/validation.js";
import { directCallContext } from "./direct-call.js";
import { errorResponse, SSE_PATH_PREFIX, ssePath } from "./sse-route.js";
import { isStreamId } from "./stream-id.js";
import { SUBSCRIBE_PROCEDURE } from "./stream-service.js";
import type { StreamTicketSigner } from "./stream-ticket.js";
import type { WebSocketConfig } from "./websocket-config.js";

export const INIT_PATH = `${SSE_PATH_PREFIX}init`;
const TICKET_PATH = /^\/streams\/([^/]+)\/ticket$/;

export function websocketPath(streamId: string): string {
  return `${SSE_PATH_PREFIX}${encodeURIComponent(streamId)}/ws`;
}

/**
 * The original design's entry point for live media: `POST /streams/init` creates a stream as
 * InitStream does (same JSON fields, same checks, same permission) and answers with where to publish
 * and follow it: `ws_url` (carrying a short-lived ticket, since a browser's WebSocket cannot send an
 * `Authorization` header), `sse_url` and `subscribe_url`. `POST /streams/{id}/ticket` hands out a fresh
 * `ws_url` for an existing stream: for subscribers, and for producers reconnecting after theirs expired.
 */
export function createStreamsInitRoute(
  impl: Pick<ServiceImpl<typeof StreamService>, "initStream">,
  tickets: StreamTicketSigner,
  config: WebSocketConfig,
): HttpRoute {
  const validate = messageValidator();
  return {
    method: "POST",
    pathPrefix: SSE_PATH_PREFIX,
    async handle(request, context) {
      try {
        return json(await serve(request, context));
      } catch (err) {
        return errorResponse(ConnectError.from(err));
      }
    },
  };

  async function serve(request: Request, context: HttpRouteContext): Promise<Record<string, JsonValue>> {
    const principal = context.principal;
    if (!principal) {
      throw new ConnectError("send `Authorization: Bearer <api key>` to create or connect to a stream", Code.Unauthenticated);
    }
    const url = new URL(request.url);
    const base = publicBase(request, config);
    if (url.pathname === INIT_PATH) {
      // The permission first, as the RPC's interceptors check it before the request's rules.
      const ctx = directCallContext(principal, StreamService.method.initStream, request.url, context.signal);
      const message = initRequest(await jsonBody(request));
      validate(InitStreamRequestSchema, message);
      const created = await impl.initStream(message, ctx);
      const info = toJson(StreamInfoSchema, create(StreamInfoSchema, created.stream));
      const streamId = created.stream?.ref?.streamId ?? "";
      return {
        ...ticketed(principal, streamId, base),
        sse_url: `${base}${ssePath(streamId)}`,
        subscribe_url: `${base}${SUBSCRIBE_PROCEDURE}`,
        recommended_chunk_bytes: created.recommendedChunkBytes ?? 0,
        stream: info,
      };
    }
    const streamId = decodeURIComponent(TICKET_PATH.exec(url.pathname)?.[1] ?? "");
    if (!isStreamId(streamId)) {
      throw new ConnectError(`no such endpoint: POST ${INIT_PATH}, or POST ${SSE_PATH_PREFIX}{stream_id}/ticket`, Code.NotFound);
    }
    // A ticket carries only what its holder may already do; refuse one that could do nothing with it.
    const publishRefusal = permissionRefusal(principal, StreamService.method.publish);
    const subscribeRefusal = permissionRefusal(principal, StreamService.method.subscribe);
    if (publishRefusal && subscribeRefusal) throw subscribeRefusal;
    return ticketed(principal, streamId, base);
  }

  function ticketed(principal: Principal, streamId: string, base: string): Record<string, JsonValue> {
    const ticket = tickets.mint(principal, streamId);
    const wsBase = base.replace(/^http/, "ws");
    return {
      stream_id: streamId,
      ws_url: `${wsBase}${websocketPath(streamId)}?ticket=${encodeURIComponent(ticket)}`,
      ticket_expires_at: new Date(Date.now() + tickets.ttlSeconds * 1000).toISOString(),
    };
  }
}

/**
 * Where clients reach this server: `MENTATLAB_PUBLIC_URL`, else the address the request came to (as
 * the distributed gateway forwards it), so the URLs work for the caller that asked.
 */
function publicBase(request: Request, config: WebSocketConfig): string {
  if (config.publicUrl) return config.publicUrl;
  const url = new URL(request.url);
  const host = request.headers.get("x-forwarded-host") ?? url.host;
  const proto = request.headers.get("x-forwarded-proto") ?? url.protocol.replace(/:$/, "");
  return `${proto}://${host}`;
}

async function jsonBody(request: Request): Promise<JsonValue> {
  const text = await request.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    throw new ConnectError(
      'the body must be a JSON InitStreamRequest, e.g. {"payload_type": "PIN_TYPE_AUDIO", "mime_type": "audio/webm;codecs=opus"}',
      Code.InvalidArgument,
    );
  }
}

function initRequest(body: JsonValue) {
  try {
    return fromJson(InitStreamRequestSchema, body);
  } catch (err) {
    throw new ConnectError(`the body is not an InitStreamRequest: ${err instanceof Error ? err.message : String(err)}`, Code.InvalidArgument);
  }
}

function json(body: Record<string, JsonValue>): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json", "cache-control": "no-store" } });
}
