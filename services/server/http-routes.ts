import type { HttpRoute } from "../shared/http-route.js";
import type { Principal } from "../shared/principal.js";
import { BodyTooLargeError, limitedRequest } from "./body-limit.js";
import { clientGoneSignal, discardUnreadBody, sendFetchResponse, toFetchRequest, type NodeRequest, type NodeResponse } from "./node-fetch-bridge.js";

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

/** A short text answer the dispatcher gives itself, without a route. */
export interface PlainAnswer {
  readonly status: number;
  readonly text: string;
  readonly headers?: Readonly<Record<string, string>>;
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

/**
 * The route that serves a request, or the answer refusing it (404, 405 with `Allow`, 413 for a
 * declared body over the limit) before anything reads its body.
 */
function chooseRoute(
  routes: readonly HttpRoute[],
  options: HttpRouteDispatcherOptions,
  method: string,
  pathname: string,
  declaredBodyBytes: number,
): { route: HttpRoute } | { refusal: PlainAnswer } {
  const route = matchRoute(routes, method, pathname) ?? (options.fallback && matchRoute([options.fallback], method, pathname));
  if (route === undefined) {
    const allowed = methodsOfLongestPrefix(routes, pathname);
    if (allowed.length > 0) {
      return { refusal: { status: 405, text: `method ${method} is not allowed here; use ${allowed.join(" or ")}`, headers: { allow: allowed.join(", ") } } };
    }
    return { refusal: { status: 404, text: `no route for ${pathname}` } };
  }
  if (declaredBodyBytes > options.maxRequestBodyBytes) {
    return { refusal: { status: 413, text: `request body of ${declaredBodyBytes} bytes exceeds the limit of ${options.maxRequestBodyBytes} bytes` } };
  }
  return { route };
}

/** What a route's failure is answered with; undefined when the call was aborted and the connection is to be dropped. */
function failureAnswer(error: unknown, route: HttpRoute, signal: AbortSignal, maxRequestBodyBytes: number): PlainAnswer | undefined {
  if (error instanceof BodyTooLargeError || (error instanceof Error && error.cause instanceof BodyTooLargeError)) {
    return { status: 413, text: `request body exceeds the limit of ${maxRequestBodyBytes} bytes` };
  }
  if (signal.aborted) return undefined;
  console.error(`plain HTTP route ${route.method} ${route.pathPrefix} failed`, error);
  return { status: 500, text: "internal error" };
}

/** Authenticates the caller and runs the route. */
async function runRoute(route: HttpRoute, request: Request, options: HttpRouteDispatcherOptions, signal: AbortSignal): Promise<Response> {
  const principal = await options.authenticate?.(request);
  return route.handle(request, { principal, signal });
}

/** Serves plain-HTTP routes on Node's request/response objects through the Fetch API. */
export function createHttpRouteDispatcher(routes: readonly HttpRoute[], options: HttpRouteDispatcherOptions) {
  return async function dispatch(req: NodeRequest, res: NodeResponse): Promise<void> {
    const method = req.method ?? "GET";
    const pathname = new URL(req.url ?? "/", "http://localhost").pathname;
    const chosen = chooseRoute(routes, options, method, pathname, Number(req.headers["content-length"] ?? 0));
    if ("refusal" in chosen) {
      writePlainAnswer(req, res, chosen.refusal);
      return;
    }
    const signal = AbortSignal.any([clientGoneSignal(res), options.shutdownSignal]);
    const request = toFetchRequest(req, signal, options.maxRequestBodyBytes);
    try {
      await sendFetchResponse(await runRoute(chosen.route, request, options, signal), res, method === "HEAD");
      discardUnreadBody(req);
    } catch (error) {
      const answer = res.headersSent ? undefined : failureAnswer(error, chosen.route, signal, options.maxRequestBodyBytes);
      if (answer) writePlainAnswer(req, res, answer);
      else res.destroy(res.headersSent && error instanceof Error ? error : undefined);
    }
  };
}

/**
 * Serves plain-HTTP routes to a Fetch-API runtime, the request's body held to the limit as it is
 * read. A call aborted by the client or by shutdown rejects: there is nobody left to answer.
 */
export function createFetchRouteDispatcher(routes: readonly HttpRoute[], options: HttpRouteDispatcherOptions) {
  return async function dispatch(request: Request): Promise<Response> {
    const method = request.method;
    const chosen = chooseRoute(routes, options, method, new URL(request.url).pathname, Number(request.headers.get("content-length") ?? 0));
    if ("refusal" in chosen) return plainResponse(chosen.refusal);
    const signal = AbortSignal.any([request.signal, options.shutdownSignal]);
    try {
      const response = await runRoute(chosen.route, limitedRequest(request, options.maxRequestBodyBytes, signal), options, signal);
      return method === "HEAD" ? new Response(null, { status: response.status, headers: response.headers }) : response;
    } catch (error) {
      const answer = failureAnswer(error, chosen.route, signal, options.maxRequestBodyBytes);
      if (answer === undefined) throw error;
      return plainResponse(answer);
    }
  };
}

/** The methods served at the longest prefix matching `pathname`, for a 405's `Allow`. */
function methodsOfLongestPrefix(routes: readonly HttpRoute[], pathname: string): string[] {
  const matching = routes.filter((route) => pathname.startsWith(route.pathPrefix));
  const longest = Math.max(...matching.map((route) => route.pathPrefix.length));
  return [...new Set(matching.filter((route) => route.pathPrefix.length === longest).map((route) => route.method))];
}

const plainTextType = "text/plain; charset=utf-8";

/** A short text answer as a Fetch `Response`. */
export function plainResponse(answer: PlainAnswer): Response {
  return new Response(`${answer.text}\n`, { status: answer.status, headers: { ...answer.headers, "content-type": plainTextType } });
}

function writePlainAnswer(req: NodeRequest, res: NodeResponse, answer: PlainAnswer): void {
  writePlain(req, res, answer.status, answer.text, answer.headers);
}

/** Answers with a short text body, discarding whatever request body is left. */
export function writePlain(req: NodeRequest, res: NodeResponse, status: number, text: string, headers: Readonly<Record<string, string>> = {}): void {
  discardUnreadBody(req);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader("content-type", plainTextType);
  res.statusCode = status;
  res.end(`${text}\n`);
}
