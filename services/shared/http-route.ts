import type { Principal } from "./principal.js";

/**
 * A plain-HTTP endpoint served on the same port as the RPCs (media GETs for <img>/<video> tags and
 * CDNs, Server-Sent Events for consumers that do not speak Connect). Written against the Fetch API so
 * the same handler runs on Node's server and on Fetch-API runtimes.
 */
export interface HttpRoute {
  /** HTTP method, upper case. */
  readonly method: "GET" | "HEAD" | "POST" | "PUT" | "DELETE";
  /** Path prefix the route owns, e.g. `/media/`. The longest matching prefix wins. */
  readonly pathPrefix: string;
  /**
   * Handles one request. `principal` is set when the request carried a valid `Authorization: Bearer`
   * key; routes that also accept other credentials (e.g. a presigned URL's signature) check those.
   */
  handle(request: Request, context: HttpRouteContext): Promise<Response>;
}

/** What the server resolved about a plain-HTTP request before handing it to a route. */
export interface HttpRouteContext {
  /** The caller, when a valid bearer key was sent. */
  readonly principal: Principal | undefined;
  /** Aborted when the client goes away or the server shuts down. */
  readonly signal: AbortSignal;
}
