import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeWebReadableStream } from "node:stream/web";

/** A request as Node's HTTP/1.1 server or HTTP/2 compatibility API hands it over. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** The matching response object. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/** Raised through the body stream when a client sends more than the plain-HTTP body limit. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`);
  }
}

/**
 * Wraps a Node request as a Fetch `Request` whose body streams from the socket (pull-based, so a
 * slow route slows the client down) and fails with `BodyTooLargeError` past `maxBodyBytes`.
 */
export function toFetchRequest(req: NodeRequest, signal: AbortSignal, maxBodyBytes: number): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    // HTTP/2 pseudo-headers (":path", ...) are not valid Fetch header names.
    if (name.startsWith(":") || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  const authority = req.headers[":authority"] ?? req.headers.host ?? "localhost";
  const url = new URL(req.url ?? "/", `http://${String(authority)}`);
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  return new Request(url, {
    method,
    headers,
    signal,
    ...(hasBody ? { body: limitedBody(req, maxBodyBytes), duplex: "half" } : {}),
  } as RequestInit);
}

function limitedBody(req: NodeRequest, limit: number): ReadableStream<Uint8Array> {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      callback(seen > limit ? new BodyTooLargeError(limit) : null, chunk);
    },
  });
  req.pipe(counter);
  req.once("error", (error) => counter.destroy(error));
  return Readable.toWeb(counter) as ReadableStream<Uint8Array>;
}

/**
 * Writes a Fetch `Response` to Node, streaming the body with backpressure; headers already set on
 * `res` (CORS) are kept. HEAD answers get headers only.
 */
export async function sendFetchResponse(response: Response, res: NodeResponse, isHead: boolean): Promise<void> {
  for (const [name, value] of response.headers) res.setHeader(name, value);
  res.statusCode = response.status;
  if (response.body === null || isHead) {
    await response.body?.cancel();
    res.end();
    return;
  }
  await pipeline(Readable.fromWeb(response.body as NodeWebReadableStream<Uint8Array>), res);
}

/** A signal that aborts when the client goes away before the response is complete. */
export function clientGoneSignal(res: NodeResponse): AbortSignal {
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) controller.abort(new Error("client closed the connection"));
  });
  return controller.signal;
}
