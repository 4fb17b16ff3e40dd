import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Principal } from "../shared/principal.js";
import type { UpgradeRoute } from "../shared/upgrade-route.js";

/**
 * Serves HTTP/1.1 `Upgrade` requests (WebSocket) with the route of the longest matching prefix. Only
 * HTTP/1.1 upgrades: WebSocket over HTTP/2 (RFC 8441) is not offered, so clients fall back to HTTP/1.1.
 */
export function createUpgradeDispatcher(
  routes: readonly UpgradeRoute[],
  options: { readonly authenticate?: (request: Request) => Promise<Principal | undefined>; readonly shutdownSignal: AbortSignal },
) {
  const routeOf = (req: IncomingMessage): UpgradeRoute | undefined => {
    const pathname = new URL(req.url ?? "/", "http://localhost").pathname;
    return routes.filter((candidate) => pathname.startsWith(candidate.pathPrefix)).sort((a, b) => b.pathPrefix.length - a.pathPrefix.length)[0];
  };
  return {
    /**
     * Whether `req` is taken as an upgrade (Node's `shouldUpgradeCallback`): only WebSocket upgrades
     * to a path a route owns. Anything else, e.g. curl's `Upgrade: h2c` offer, is served as the plain
     * HTTP/1.1 request it also is.
     */
    accepts(req: IncomingMessage): boolean {
      return req.headers.upgrade?.toLowerCase() === "websocket" && routeOf(req) !== undefined;
    },
    dispatch: (req: IncomingMessage, socket: Duplex, head: Buffer) => dispatch(req, socket, head),
  };

  async function dispatch(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // The socket is the route's from here; an error before it takes over must not crash the process.
    socket.on("error", () => socket.destroy());
    const route = routeOf(req);
    // accepts() admitted only requests a route owns; should that ever change, drop rather than hang.
    if (!route) {
      socket.destroy();
      return;
    }
    const headers = new Headers();
    const authorization = req.headers.authorization;
    if (authorization !== undefined) headers.set("authorization", authorization);
    let principal: Principal | undefined;
    try {
      principal = await options.authenticate?.(new Request(`http://localhost${req.url ?? "/"}`, { headers }));
    } catch (error) {
      console.error(`upgrade at ${route.pathPrefix}: authentication failed`, error);
      socket.end("HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\n\r\n");
      return;
    }
    route.handle(req, socket, head, { principal, signal: options.shutdownSignal });
  }
}
