import type { IncomingMessage, ServerResponse } from "node:http";
import { constants as http2Constants, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { Readable, Transform } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import type { ReadableStream as NodeWebReadableStream } from "node:stream/web";
import { BodyTooLargeError } from "./body-limit.js";

/** A request as Node's HTTP/1.1 server or HTTP/2 compatibility API hands it over. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** The matching response object. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

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
  const piping = pipeline(Readable.fromWeb(response.body as NodeWebReadableStream<Uint8Array>), res);
  if (!("stream" in res)) return piping;
  // Over HTTP/2 the compat response only finishes once the client has ended its request too; the
  // answer is complete as soon as our side of the stream has ended. Ending the stream early may
  // then fail the pipe, which no longer matters.
  await Promise.race([piping, finished(res.stream, { readable: false })]);
  piping.catch(() => undefined);
}

/** A signal that aborts when the client goes away before the response is complete. */
export function clientGoneSignal(res: NodeResponse): AbortSignal {
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) controller.abort(new Error("client closed the connection"));
  });
  return controller.signal;
}

/**
 * Throws away whatever request body nobody read. Over HTTP/2 a stream whose request body is never
 * read never closes (and graceful shutdown would wait for it); RFC 9113 §8.1 lets the server end
 * it with RST_STREAM(NO_ERROR) once its response is complete.
 */
export function discardUnreadBody(req: NodeRequest): void {
  req.unpipe();
  req.resume();
  if (!("stream" in req)) return;
  const stream = req.stream;
  const endStream = () => {
    if (!stream.closed) stream.close(http2Constants.NGHTTP2_NO_ERROR);
  };
  if (stream.writableFinished) endStream();
  else stream.once("finish", endStream);
}
