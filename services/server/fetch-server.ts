import { Code, ConnectError, createConnectRouter } from "@connectrpc/connect";
import { createFetchHandler } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { serverDefaults } from "./config.js";
import { corsDeniedText, createCorsPolicy } from "./cors.js";
import { decodeErrorGate } from "./decode-errors.js";
import { createHealthRegistry, type HealthRegistry } from "./health.js";
import { createFetchRouteDispatcher, matchRoute, plainResponse } from "./http-routes.js";
import { mountServices } from "./mount.js";
import type { ServerOptions } from "./server.js";
import { staticFilesRoute } from "./static-files.js";
import { failTruncatedStreams } from "./truncation-guard.js";
import { mediaType, rpcErrorAnswer, unknownProcedureAnswer, type RpcErrorAnswer } from "./unknown-procedure.js";

/**
 * What a Fetch-API server serves: the Node server's options less what only node:http2 can do (the
 * fast path's pre-encoded streams and relays, WebSocket upgrades) and the listener's own settings.
 */
export type FetchServerOptions = Pick<
  ServerOptions,
  | "routes"
  | "interceptors"
  | "httpRoutes"
  | "authenticateHttp"
  | "corsAllowedOrigins"
  | "readMaxBytes"
  | "writeMaxBytes"
  | "maxRequestBodyBytes"
  | "uncompressedServices"
  | "staticDir"
>;

/** The mesh's routes as one Fetch-API handler, for `Bun.serve({ fetch })` and `Deno.serve(handler)`. */
export interface FetchServer {
  /** Answers one request: Connect (JSON and binary), gRPC-web, or a plain-HTTP route. */
  fetch(request: Request): Promise<Response>;
  /** Serving status reported by `grpc.health.v1.Health`. */
  readonly health: HealthRegistry;
  /** Ends every call still running with UNAVAILABLE: the grace period of a shutdown is over. */
  abortInFlight(): void;
}

/** Why native gRPC is refused, in the caller's protocol. */
const nativeGrpcRefusal = new ConnectError(
  "native gRPC is not served on this runtime: a Fetch-API Response cannot carry the HTTP trailers gRPC ends a call with. Call this port with gRPC-web or Connect, or use the Node server (npm start) for gRPC",
  Code.Unimplemented,
);

/** What a WebSocket upgrade is told: the stream WebSocket takes over a Node socket. */
const upgradeRefusal =
  "WebSocket streams are served by the Node server only (npm start); on this runtime follow a stream over Server-Sent Events (GET /streams/{id}/events) or Connect";

/**
 * Serves the same router as `startServer` (same interceptors, health, reflection, decode-error
 * gate, limits, CORS) and the same plain-HTTP routes, through Connect's Fetch-API handlers. Client
 * and bidirectional streaming need HTTP/2 end to end and are answered 505 (HTTP Version Not
 * Supported), as Connect answers them over HTTP/1.1.
 */
export function createFetchServer(options: FetchServerOptions): FetchServer {
  const shutdown = new AbortController();
  const health = createHealthRegistry();
  const router = createConnectRouter({
    interceptors: [failTruncatedStreams, ...(options.interceptors ?? [])],
    readMaxBytes: options.readMaxBytes ?? serverDefaults.readMaxBytes,
    writeMaxBytes: options.writeMaxBytes ?? serverDefaults.writeMaxBytes,
    shutdownSignal: shutdown.signal,
    requestGate: decodeErrorGate,
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  mountServices(router, options, health);
  // Connect refuses client and bidi streams on HTTP/1.x; Bun's server speaks only that, and Deno's
  // Request does not say which version carried it.
  const rpcs = new Map(router.handlers.map((handler) => [handler.requestPath, createFetchHandler(handler, { httpVersion: "1.1" })]));
  const httpRoutes = options.httpRoutes ?? [];
  const maxRequestBodyBytes = options.maxRequestBodyBytes ?? serverDefaults.maxRequestBodyBytes;
  const dispatch = createFetchRouteDispatcher(httpRoutes, {
    maxRequestBodyBytes,
    ...(options.staticDir ? { fallback: staticFilesRoute(options.staticDir) } : {}),
    shutdownSignal: shutdown.signal,
    ...(options.authenticateHttp ? { authenticate: options.authenticateHttp } : {}),
  });
  const cors = createCorsPolicy(options.corsAllowedOrigins ?? []);

  const route = (request: Request): Promise<Response> | Response => {
    const { pathname } = new URL(request.url);
    const contentType = mediaType(request.headers.get("content-type"));
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") return plainResponse({ status: 501, text: upgradeRefusal });
    if (isNativeGrpc(contentType)) return rpcAnswerResponse(rpcErrorAnswer(nativeGrpcRefusal, contentType)!);
    const rpc = rpcs.get(pathname);
    if (rpc !== undefined) return rpc(request);
    // A plain-HTTP route may own a path shaped like a procedure (`POST /streams/init`): it wins.
    if (matchRoute(httpRoutes, request.method, pathname) === undefined) {
      const unknown = unknownProcedureAnswer(request.method, pathname, contentType);
      if (unknown !== undefined) return rpcAnswerResponse(unknown);
    }
    return dispatch(request);
  };

  return {
    health,
    abortInFlight: () => shutdown.abort(new ConnectError("server is shutting down; retry on another replica", Code.Unavailable)),
    async fetch(request) {
      const decision = cors(request.method, (name) => requestHeader(request, name));
      if (decision.kind === "denied") return plainResponse({ status: 403, text: corsDeniedText(decision.origin) });
      if (decision.kind === "preflight") return new Response(null, { status: 204, headers: decision.headers });
      let response: Response;
      try {
        response = await route(request);
      } catch (error) {
        // Aborted by the client (nobody is left to answer) or by the end of a shutdown's grace period.
        if (request.signal.aborted || shutdown.signal.aborted) return plainResponse({ status: 503, text: "the call was aborted" });
        console.error(`${request.method} ${new URL(request.url).pathname} failed`, error);
        return plainResponse({ status: 500, text: "internal error" });
      }
      return decision.kind === "actual" ? withHeaders(response, decision.headers) : response;
    },
  };
}

/** A request header for the CORS policy; a Fetch `Request` holds no pseudo-headers, so `:authority` comes from its URL. */
function requestHeader(request: Request, name: string): string | undefined {
  if (name === ":authority") return new URL(request.url).host;
  return request.headers.get(name) ?? undefined;
}

/** gRPC proper, as opposed to gRPC-web (`application/grpc-web…`). */
function isNativeGrpc(contentType: string): boolean {
  return contentType === "application/grpc" || contentType.startsWith("application/grpc+");
}

function rpcAnswerResponse(answer: RpcErrorAnswer): Response {
  return new Response(answer.body as Uint8Array<ArrayBuffer>, { status: answer.status, headers: answer.headers });
}

/** `response` with `extra` headers added; a response from `fetch()` has immutable headers, so it is rebuilt. */
function withHeaders(response: Response, extra: Readonly<Record<string, string>>): Response {
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
