import type { HttpRoute } from "../shared/http-route.js";

/** Headers that describe one hop of the connection, not the message, so they are never passed on. */
const hopByHop = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "host", "http2-settings", "te"]);

/**
 * Forwards plain-HTTP requests under `pathPrefix` (media GETs, Server-Sent Events, `POST /streams/init`) to the service that
 * owns them. Bodies are streamed both ways, so a video or a live event stream passes through without
 * being buffered, and the upstream's status and headers (Range, ETag, Cache-Control) reach the client.
 */
export function proxyRoute(method: HttpRoute["method"], pathPrefix: string, upstreamUrl: string): HttpRoute {
  return {
    method,
    pathPrefix,
    async handle(request, { signal }) {
      const incoming = new URL(request.url);
      const target = new URL(incoming.pathname + incoming.search, upstreamUrl);
      const headers = new Headers();
      request.headers.forEach((value, name) => {
        if (!hopByHop.has(name) && !name.startsWith(":")) headers.set(name, value);
      });
      // The owner hands out URLs (a stream's ws_url) that must point back at the gateway the caller used.
      headers.set("x-forwarded-host", incoming.host);
      headers.set("x-forwarded-proto", incoming.protocol.replace(/:$/, ""));
      const body = request.method === "GET" || request.method === "HEAD" ? {} : { body: request.body, duplex: "half" };
      const upstream = await fetch(target, { method: request.method, headers, signal, redirect: "manual", ...body } as RequestInit);
      // fetch() hands back a decoded body: its length and encoding headers no longer describe it.
      const decoded = upstream.headers.has("content-encoding");
      const responseHeaders = new Headers();
      upstream.headers.forEach((value, name) => {
        if (hopByHop.has(name)) return;
        if (decoded && (name === "content-encoding" || name === "content-length")) return;
        responseHeaders.set(name, value);
      });
      return new Response(upstream.body, { status: upstream.status, headers: responseHeaders });
    },
  };
}
