import type { HttpRoute } from "../shared/http-route.js";
import type { Principal } from "../shared/principal.js";
import {
  BodyTooLargeError,
  clientGoneSignal,
  discardUnreadBody,
  sendFetchResponse,
  toFetchRequest,
  type NodeRequest,
  type NodeResponse,
} from "./node-fetch-bridge.js";

export interface HttpRouteDispatcherOptions {
  /** Resolves the caller of a plain-HTTP request (e.g. from a bearer key). */
  readonly authenticate?: (request: Request) => Promise<Principal | undefined>;
  /** Bodies larger than this are refused with 413. */
  readonly maxRequestBodyBytes: number;
  /** Serves GET and HEAD requests no route matched (the web UI's files); it never causes a 405. */
  readonly fallback?: HttpRoute;
  /** Aborts every route still running when the server gives up on graceful shutdown. */
  readonly shutdownSignal: AbortSignal;
}

/** The route for a method and path: longest `pathPrefix` wins; HEAD falls back to GET. */
export function matchRoute(routes: readonly HttpRoute[], method: string, pathname: string): HttpRoute | undefined {
  let best: HttpRoute | undefined;
  for (const route of routes) {
    if (!pathname.startsWith(route.pathPrefix)) continue;
    const fits = route.method === method || (method === "HEAD" && route.method === "GET");
    if (!fits) continue;
    const better =
      best === undefined ||
      route.pathPrefix.length > best.pathPrefix.length ||
      // An explicit HEAD route beats the GET fallback of the same prefix.
      (route.pathPrefix.length === best.pathPrefix.length && route.method === method);
    if (better) best = route;
  }
  return best;
}

/** Serves plain-HTTP routes on Node's request/response objects through the Fetch API. */
export function createHttpRouteDispatcher(routes: readonly HttpRoute[], options: HttpRouteDispatcherOptions) {
  return async function dispatch(req: NodeRequest, res: NodeResponse): Promise<void> {
    const method = req.method ?? "GET";
    const pathname = new URL(req.url ?? "/", "http://localhost").pathname;
    const route = matchRoute(routes, method, pathname) ?? (options.fallback && matchRoute([options.fallback], method, pathname));
    if (route === undefined) {
      const allowed = methodsOfLongestPrefix(routes, pathname);
      if (allowed.length > 0) {
        writePlain(req, res, 405, `method ${method} is not allowed here; use ${allowed.join(" or ")}`, { allow: allowed.join(", ") });
      } else {
        writePlain(req, res, 404, `no route for ${pathname}`);
      }
      return;
    }
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > options.maxRequestBodyBytes) {
      writePlain(req, res, 413, `request body of ${declared} bytes exceeds the limit of ${options.maxRequestBodyBytes} bytes`);
      return;
    }
    const signal = AbortSignal.any([clientGoneSignal(res), options.shutdownSignal]);
    const request = toFetchRequest(req, signal, options.maxRequestBodyBytes);
    try {
      const principal = await options.authenticate?.(request);
      const response = await route.handle(request, { principal, signal });
      await sendFetchResponse(response, res, method === "HEAD");
      discardUnreadBody(req);
    } catch (error) {
      if (res.headersSent) {
        res.destroy(error instanceof Error ? error : undefined);
        return;
      }
      if (error instanceof BodyTooLargeError || (error instanceof Error && error.cause instanceof BodyTooLargeError)) {
        writePlain(req, res, 413, `request body exceeds the limit of ${options.maxRequestBodyBytes} bytes`);
      } else if (signal.aborted) {
        res.destroy();
      } else {
        console.error(`plain HTTP route ${route.method} ${route.pathPrefix} failed`, error);
        writePlain(req, res, 500, "internal error");
      }
    }
  };
}

/** The methods served at the longest prefix matching `pathname`, for a 405's `Allow`. */
function methodsOfLongestPrefix(routes: readonly HttpRoute[], pathname: string): string[] {
  const matching = routes.filter((route) => pathname.startsWith(route.pathPrefix));
  const longest = Math.max(...matching.map((route) => route.pathPrefix.length));
  return [...new Set(matching.filter((route) => route.pathPrefix.length === longest).map((route) => route.method))];
}

/** Answers with a short text body, discarding whatever request body is left. */
export function writePlain(req: NodeRequest, res: NodeResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  discardUnreadBody(req);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.statusCode = status;
  res.end(`${text}\n`);
}
