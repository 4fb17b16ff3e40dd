import type { IncomingMessage } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import type { UpgradeRoute } from "../shared/upgrade-route.js";

/**
 * Passes HTTP/1.1 `Upgrade` requests under `pathPrefix` (a stream's WebSocket) to the process that owns
 * them, then joins the two connections byte for byte: the owner authenticates the caller itself, as it
 * does every call, and TCP flow control carries each side's pace through (pipe() pauses the faster one).
 */
export function proxyUpgrade(pathPrefix: string, upstreamUrl: string): UpgradeRoute {
  const target = new URL(upstreamUrl);
  return {
    pathPrefix,
    handle(request: IncomingMessage, socket: Duplex, head: Buffer, { signal }) {
      const upstream = connect({ host: target.hostname, port: Number(target.port || 80), noDelay: true });
      const teardown = () => {
        socket.destroy();
        upstream.destroy();
      };
      signal.addEventListener("abort", teardown, { once: true });
      upstream.once("close", () => signal.removeEventListener("abort", teardown));
      upstream.on("error", () => {
        if (upstream.bytesRead === 0 && socket.writable) {
          socket.end("HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\nthe stream service is unavailable; retry\n");
        } else teardown();
      });
      socket.on("error", teardown);
      socket.on("close", () => upstream.destroy());
      upstream.once("connect", () => {
        upstream.write(requestHead(request, target.host));
        if (head.length > 0) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
    },
  };
}

/** The request line and headers as received, with `Host` naming the owner. */
function requestHead(request: IncomingMessage, host: string): string {
  const lines = [`${request.method ?? "GET"} ${request.url ?? "/"} HTTP/1.1`];
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? "";
    lines.push(`${name}: ${name.toLowerCase() === "host" ? host : (raw[i + 1] ?? "")}`);
  }
  return `${lines.join("\r\n")}\r\n\r\n`;
}
