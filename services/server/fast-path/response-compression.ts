import type { IncomingHttpHeaders } from "node:http2";
import { promisify } from "node:util";
import { gzip as gzipCallback } from "node:zlib";
import type { WireProtocol } from "./protocols.js";

/** Compresses off the event loop (zlib's thread pool). */
export const gzip: (bytes: Uint8Array) => Promise<Uint8Array> = promisify(gzipCallback);

/** Messages smaller than this are sent as they are: gzip would cost more than it saves (Connect's default too). */
export const compressMinBytes = 1024;

/**
 * Whether a call's responses are gzip'd: its client accepts gzip and its service is compressed (text
 * and JSON; media services never are: their bytes do not shrink and gzip cuts throughput eightfold).
 * Compressed requests are not taken by this path: Connect decompresses them.
 */
export function negotiateGzip(protocol: WireProtocol, headers: IncomingHttpHeaders, serviceCompressed: boolean): boolean {
  if (!serviceCompressed) return false;
  const accepted = headers[protocol.acceptEncodingHeader];
  const list = Array.isArray(accepted) ? accepted.join(",") : (accepted ?? "");
  return list.split(",").some((name) => name.trim().split(";")[0] === "gzip");
}
