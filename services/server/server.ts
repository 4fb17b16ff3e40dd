import { Code, ConnectError, type ConnectRouter, type Interceptor, type MethodImplSpec } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createServer as createHttp1Server } from "node:http";
import { createServer as createHttp2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import type { HttpRoute } from "../shared/http-route.js";
import type { Principal } from "../shared/principal.js";
import type { UpgradeRoute } from "../shared/upgrade-route.js";
import { MIB, serverDefaults } from "./config.js";
import { corsDeniedText, createCorsPolicy } from "./cors.js";
import { decodeErrorGate } from "./decode-errors.js";
import { createHealthRegistry, ServingStatus, type HealthRegistry } from "./health.js";
import { createFastPath, type EncodedRelay, type EncodedServerStream } from "./fast-path/index.js";
import { createHttpRouteDispatcher, matchRoute, writePlain } from "./http-routes.js";
import type { NodeRequest, NodeResponse } from "./node-fetch-bridge.js";
import { listenOnePort } from "./one-port.js";
import { mountServices } from "./mount.js";
import { reflectionServices } from "./reflection.js";
import { staticFilesRoute } from "./static-files.js";
import { answerUnknownProcedure } from "./unknown-procedure.js";
import { failTruncatedStreams } from "./truncation-guard.js";
import { createUpgradeDispatcher } from "./upgrades.js";

export { installSignalHandlers } from "./signals.js";

export interface ServerOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Mounts the services. */
  routes: (router: ConnectRouter) => void;
  /** Interceptors for every RPC (auth, validation, ...), outermost first. */
  interceptors?: readonly Interceptor[];
  /** Plain-HTTP endpoints beside the RPCs (media GET, SSE). */
  httpRoutes?: readonly HttpRoute[];
  /** HTTP/1.1 `Upgrade` endpoints (WebSocket); they get the same `authenticateHttp` principal. */
  upgradeRoutes?: readonly UpgradeRoute[];
  /** Resolves the caller of a plain-HTTP request, for `HttpRouteContext.principal`. */
  authenticateHttp?: (request: Request) => Promise<Principal | undefined>;
  /** Browser origins allowed cross-origin (exact, or "*"); same-origin always works. */
  corsAllowedOrigins?: readonly string[];
  /** Largest RPC message accepted; default 8 MiB. */
  readMaxBytes?: number;
  /** Largest RPC message sent; default 8 MiB. */
  writeMaxBytes?: number;
  /** Largest plain-HTTP request body; default 64 MiB. */
  maxRequestBodyBytes?: number;
  /** Type names of services whose RPCs are never compressed (media: compression costs 8x throughput). */
  uncompressedServices?: readonly string[];
  /** How long in-flight calls may run once `close()` starts; default 10 s. */
  shutdownGraceMs?: number;
  /** Web UI files served at `/` (GET and HEAD). */
  staticDir?: string | undefined;
  /**
   * Server streams whose fast-path handler writes pre-encoded messages (gRPC and binary Connect over
   * HTTP/2), after the same interceptors; `routes` mounts the procedure for the other protocols.
   */
  encodedStreams?: readonly EncodedServerStream[];
  /**
   * Procedures relayed still encoded on the fast path (gRPC and binary Connect over HTTP/2), after the
   * same interceptors; `routes` mounts them too, for the other protocols.
   */
  relays?: readonly EncodedRelay[];
}

export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly port: number;
  /** Serving status reported by `grpc.health.v1.Health`. */
  readonly health: HealthRegistry;
  /** Calls served on the HTTP/2 fast path, by `<protocol> <path>`; the others went through Connect. */
  readonly fastPathCalls: ReadonlyMap<string, number>;
  /** Graceful shutdown: stop accepting, drain up to the grace period, then end what is left with an error. */
  close(): Promise<void>;
}

/** Services that answer without credentials: the auth interceptor skips these. */
export const openServices: ReadonlySet<string> = new Set([Health.typeName, ...reflectionServices.map((s) => s.typeName)]);

/** HTTP/2 flow-control windows: Node's 64 KiB default is smaller than one media chunk. */
const http2StreamWindow = 4 * MIB;
const http2ConnectionWindow = 32 * MIB;
/** Once the grace period is over, how long aborted handlers get to send their error before the sockets go. */
const abortedHandlerMs = 1_000;

/** Starts one server answering gRPC, gRPC-web and Connect (HTTP/1.1 and h2c) plus plain HTTP on one port. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const host = options.host ?? serverDefaults.host;
  const graceMs = options.shutdownGraceMs ?? serverDefaults.shutdownGraceMs;
  const maxRequestBodyBytes = options.maxRequestBodyBytes ?? serverDefaults.maxRequestBodyBytes;
  const shutdown = new AbortController();
  const health = createHealthRegistry();

  const mounted: MethodImplSpec[] = [];
  const rpcHandler = connectNodeAdapter({
    routes: (router) => mountServices(router, options, health, mounted),
    interceptors: [failTruncatedStreams, ...(options.interceptors ?? [])],
    readMaxBytes: options.readMaxBytes ?? serverDefaults.readMaxBytes,
    writeMaxBytes: options.writeMaxBytes ?? serverDefaults.writeMaxBytes,
    shutdownSignal: shutdown.signal,
    requestGate: decodeErrorGate,
    fallback: plainHttpHandler(options, maxRequestBodyBytes, shutdown.signal),
  });
  const fastPath = createFastPath(
    { methods: mounted, encodedStreams: options.encodedStreams ?? [], relays: options.relays ?? [] },
    {
      interceptors: options.interceptors ?? [],
      readMaxBytes: options.readMaxBytes ?? serverDefaults.readMaxBytes,
      writeMaxBytes: options.writeMaxBytes ?? serverDefaults.writeMaxBytes,
      shutdownSignal: shutdown.signal,
      uncompressedServices: new Set(options.uncompressedServices ?? []),
    },
  );
  const cors = createCorsPolicy(options.corsAllowedOrigins ?? []);
  const handle = (req: NodeRequest, res: NodeResponse) => {
    const decision = cors(req.method ?? "GET", (name) => headerValue(req, name));
    switch (decision.kind) {
      case "denied":
        writePlain(req, res, 403, corsDeniedText(decision.origin));
        return;
      case "preflight":
        for (const [name, value] of Object.entries(decision.headers)) res.setHeader(name, value);
        res.statusCode = 204;
        res.end();
        return;
      case "actual":
        for (const [name, value] of Object.entries(decision.headers)) res.setHeader(name, value);
        break;
      case "none":
        break;
    }
    rpcHandler(req, res);
  };

  // No whole-request deadline: a media upload over HTTP/1.1 may rightly take longer than Node's
  // 5-minute default; the header timeout still drops clients that never finish their headers.
  const upgrades = createUpgradeDispatcher(options.upgradeRoutes ?? [], {
    shutdownSignal: shutdown.signal,
    ...(options.authenticateHttp ? { authenticate: options.authenticateHttp } : {}),
  });
  const http1 = createHttp1Server({ requestTimeout: 0, shouldUpgradeCallback: upgrades.accepts }, handle);
  http1.on("upgrade", (req, socket, head) => void upgrades.dispatch(req, socket, head));
  // A 32 MiB connection window lets a session buffer more than the 10 MB default allowance (in MB).
  const http2 = createHttp2Server({ settings: { initialWindowSize: http2StreamWindow }, maxSessionMemory: 64 }, handle);
  http2.on("session", (session) => session.setLocalWindowSize(http2ConnectionWindow));
  // gRPC and binary Connect calls are taken from the raw 'stream' event, before Node builds the
  // request/response compatibility objects Connect works on; everything else goes on to those.
  const compatibility = http2.listeners("stream") as ((...args: unknown[]) => void)[];
  http2.removeAllListeners("stream");
  http2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
    if (fastPath.take(stream, headers)) return;
    for (const listener of compatibility) listener.call(http2, stream, headers, ...rest);
  });
  const listener = await listenOnePort(host, options.port, http1, http2);

  let closed: Promise<void> | undefined;
  const close = async () => {
    health.setAll(ServingStatus.NOT_SERVING);
    const stopped = listener.stopAccepting();
    listener.closeGracefully();
    if (!(await listener.waitForConnections(graceMs))) {
      shutdown.abort(new ConnectError("server is shutting down; retry on another replica", Code.Unavailable));
      if (!(await listener.waitForConnections(abortedHandlerMs))) listener.destroyAll();
    }
    await stopped;
  };
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${listener.port}`,
    port: listener.port,
    health,
    fastPathCalls: fastPath.taken,
    close: () => (closed ??= close()),
  };
}

/** Everything that is not an RPC of a mounted service: unknown procedures, plain-HTTP routes, then the web UI's files. */
function plainHttpHandler(options: ServerOptions, maxRequestBodyBytes: number, shutdownSignal: AbortSignal) {
  const dispatch = createHttpRouteDispatcher(options.httpRoutes ?? [], {
    maxRequestBodyBytes,
    ...(options.staticDir ? { fallback: staticFilesRoute(options.staticDir) } : {}),
    shutdownSignal,
    ...(options.authenticateHttp ? { authenticate: options.authenticateHttp } : {}),
  });
  // connect-node types the response without `write`; it hands over Node's full response object.
  return (req: NodeRequest, res: Omit<NodeResponse, "write">) => {
    // A plain-HTTP route may own a path shaped like a procedure (`POST /streams/init`): it wins.
    const pathname = (req.url ?? "/").split("?")[0] ?? "/";
    const routed = matchRoute(options.httpRoutes ?? [], req.method ?? "GET", pathname) !== undefined;
    if (routed || !answerUnknownProcedure(req, res as NodeResponse)) void dispatch(req, res as NodeResponse);
  };
}

function headerValue(req: NodeRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
