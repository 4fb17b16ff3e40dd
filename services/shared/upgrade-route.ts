import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { HttpRouteContext } from "./http-route.js";

/**
 * An HTTP/1.1 `Upgrade` endpoint (WebSocket) served on the same port as the RPCs. Unlike `HttpRoute`
 * it takes over the connection itself, so it works on Node's objects rather than the Fetch API.
 */
export interface UpgradeRoute {
  /** Path prefix the route owns, e.g. `/streams/`. The longest matching prefix wins. */
  readonly pathPrefix: string;
  /**
   * Takes over `socket` (`head` holds bytes already read past the request head). `context.principal`
   * is set when the request carried a valid `Authorization: Bearer` key; `context.signal` aborts when
   * the server gives up on graceful shutdown.
   */
  handle(request: IncomingMessage, socket: Duplex, head: Buffer, context: HttpRouteContext): void;
}
