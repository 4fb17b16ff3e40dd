import { type DescMessage, type DescMethodServerStreaming, fromBinary, type Message, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { endStreamFlag, endStreamToJson, parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import {
  contentTypeProto as grpcContentType,
  parseTimeout as parseGrpcTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { NodeRequest, NodeResponse } from "./node-fetch-bridge.js";

/**
 * Where a handler writes a server stream's messages, each already encoded as an envelope (see
 * `envelope`). Messages written in one tick go out in one write; a client that reads slowly makes
 * `write` return false until `ready()` resolves, so nothing is buffered without bound.
 */
export interface EncodedSink {
  /** Queues one enveloped message; false means wait for `ready()` before writing more. */
  write(envelope: Uint8Array): boolean;
  /** Resolves once queued messages are handed to the connection and it accepts more. */
  ready(): Promise<void>;
}

/**
 * A server-streaming procedure served beside Connect for gRPC and the Connect streaming protocol
 * (binary, HTTP/2), writing pre-encoded messages: a message shared by many subscribers is encoded
 * once instead of once per subscriber. The same interceptors run first (authentication,
 * authorisation, validation); HTTP/1.1, gRPC-web, JSON and compressed requests stay with Connect.
 * Interceptors see the call as Connect would show it, except that `next` resolves only once the
 * stream has ended: headers they add to its response are not sent (ours add none).
 */
export interface EncodedServerStream<M extends DescMethodServerStreaming = DescMethodServerStreaming> {
  readonly method: M;
  /**
   * Serves one call. Resolving ends the stream with OK; a rejection (a ConnectError) ends it with that
   * error. Must stop, by throwing, once `context.signal` aborts.
   */
  serve(request: MessageShape<M["input"]>, context: HandlerContext, out: EncodedSink): Promise<void>;
}

/** A message as gRPC and Connect frame it: flags byte 0, big-endian length, message bytes. */
export function envelope(message: Uint8Array): Uint8Array {
  const framed = new Uint8Array(5 + message.byteLength);
  new DataView(framed.buffer).setUint32(1, message.byteLength);
  framed.set(message, 5);
  return framed;
}

export interface EncodedStreamOptions {
  /** The same interceptors Connect runs, outermost first. */
  readonly interceptors: readonly Interceptor[];
  readonly readMaxBytes: number;
  /** Aborted when the server gives up on draining: open streams end with its reason. */
  readonly shutdownSignal: AbortSignal;
}

/** What an interceptor wraps: one call, from request to response. */
type CallFn = Parameters<Interceptor>[0];

/** Takes a request for one of `streams` when it can serve it; false hands it to Connect. */
export type EncodedStreamDispatcher = (req: NodeRequest, res: NodeResponse) => boolean;

interface Protocol {
  readonly name: "grpc" | "connect";
  readonly responseContentType: string;
  readonly timeoutHeader: string;
  readonly parseTimeout: typeof parseGrpcTimeout;
  /** Bytes that end the response body, and trailers, for a stream that ended with `error` or OK. */
  end(trailer: Headers, error: ConnectError | undefined): StreamEnd;
}

interface StreamEnd {
  readonly body?: Uint8Array;
  readonly trailers?: Record<string, string>;
}

const grpc: Protocol = {
  name: "grpc",
  responseContentType: grpcContentType,
  timeoutHeader: "grpc-timeout",
  parseTimeout: parseGrpcTimeout,
  end(trailer, error) {
    return { trailers: Object.fromEntries(setTrailerStatus(trailer, error)) };
  },
};

const connect: Protocol = {
  name: "connect",
  responseContentType: "application/connect+proto",
  timeoutHeader: "connect-timeout-ms",
  parseTimeout: parseConnectTimeout,
  end(trailer, error) {
    const json = new TextEncoder().encode(JSON.stringify(endStreamToJson(trailer, error, undefined)));
    const body = envelope(json);
    body[0] = endStreamFlag;
    return { body };
  },
};

/** The protocol of a request this fast path serves, or undefined to leave it to Connect. */
function protocolOf(req: Http2ServerRequest): Protocol | undefined {
  if (req.method !== "POST") return undefined;
  const contentType = req.headers["content-type"]?.toLowerCase();
  const identity = (name: string) => {
    const value = req.headers[name];
    return value === undefined || value === "identity";
  };
  if ((contentType === "application/grpc" || contentType === "application/grpc+proto") && identity("grpc-encoding")) return grpc;
  if (contentType === "application/connect+proto" && identity("connect-content-encoding")) return connect;
  return undefined;
}

export function createEncodedStreamDispatcher(
  streams: readonly EncodedServerStream[],
  options: EncodedStreamOptions,
): EncodedStreamDispatcher {
  const byPath = new Map(streams.map((stream) => [`/${stream.method.parent.typeName}/${stream.method.name}`, stream]));
  return (req, res) => {
    if (req.httpVersion !== "2.0" || byPath.size === 0) return false;
    const http2Req = req as Http2ServerRequest;
    const stream = byPath.get(http2Req.url);
    const protocol = stream && protocolOf(http2Req);
    if (!stream || !protocol) return false;
    void serveCall(stream, protocol, http2Req, res as Http2ServerResponse, options);
    return true;
  };
}

async function serveCall(
  stream: EncodedServerStream,
  protocol: Protocol,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  options: EncodedStreamOptions,
): Promise<void> {
  const requestHeader = headersOf(req);
  const clientGone = new AbortController();
  res.once("close", () => clientGone.abort(new ConnectError("the client closed the stream", Code.Canceled)));
  const timeout = protocol.parseTimeout(requestHeader.get(protocol.timeoutHeader), Number.MAX_SAFE_INTEGER);
  const context = createHandlerContext({
    service: stream.method.parent,
    method: stream.method,
    protocolName: protocol.name,
    requestMethod: "POST",
    url: req.url,
    requestHeader,
    requestSignal: clientGone.signal,
    shutdownSignal: options.shutdownSignal,
    contextValues: createContextValues(),
    ...(timeout.timeoutMs === undefined ? {} : { timeoutMs: timeout.timeoutMs }),
  });
  const sink = new ResponseSink(res, protocol.responseContentType, context.responseHeader);
  let failure: ConnectError | undefined;
  try {
    if (timeout.error) throw timeout.error;
    const input = await readSingleMessage(req, options.readMaxBytes);
    const request = parseMessage(stream.method.input, input);
    const invoke: CallFn = async (call) => {
      if (!call.stream) throw new ConnectError("an interceptor turned a server stream into a unary call", Code.Internal);
      const message = (await onlyMessage(call.message)) as MessageShape<typeof stream.method.input>;
      await stream.serve(message, { ...context, requestHeader: call.header, signal: call.signal, values: call.contextValues }, sink);
      // Returning after an abort would end the stream OK: a silently truncated stream.
      context.signal.throwIfAborted();
      return { stream: true, service: stream.method.parent, method: stream.method, header: context.responseHeader, trailer: context.responseTrailer, message: noMessages() };
    };
    const chain = options.interceptors.reduceRight<CallFn>((next, interceptor) => interceptor(next), invoke);
    await chain({
      stream: true,
      service: stream.method.parent,
      method: stream.method,
      requestMethod: "POST",
      url: req.url,
      signal: context.signal,
      header: context.requestHeader,
      contextValues: context.values,
      message: oneMessage(request),
    });
  } catch (err) {
    failure = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
  } finally {
    context.abort();
  }
  sink.end(protocol.end(context.responseTrailer, failure));
}

/** Writes envelopes to an HTTP/2 response, one write per tick, pausing while the client is behind. */
class ResponseSink implements EncodedSink {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private draining: { readonly promise: Promise<void>; readonly done: () => void } | undefined;
  // Set once the HTTP/2 stream is gone (reset, session closed): writes are dropped from then on, and
  // a writer waiting for 'drain', which will never come, is released.
  private closed = false;

  constructor(
    private readonly res: Http2ServerResponse,
    private readonly contentType: string,
    /** Headers the handler or an interceptor set, sent with the first bytes. */
    private readonly header: Headers,
  ) {
    res.once("close", () => {
      this.closed = true;
      this.draining?.done();
    });
  }

  write(message: Uint8Array): boolean {
    this.pending.push(message);
    this.pendingBytes += message.byteLength;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the current burst of microtasks: every message ready now leaves in one write.
      process.nextTick(() => this.flush());
    }
    return this.draining === undefined && this.pendingBytes < this.res.writableHighWaterMark;
  }

  async ready(): Promise<void> {
    if (this.pendingBytes >= this.res.writableHighWaterMark) this.flush();
    await this.draining?.promise;
  }

  end(last: StreamEnd): void {
    if (last.body) {
      this.pending.push(last.body);
      this.pendingBytes += last.body.byteLength;
    }
    this.flush();
    if (this.closed || this.res.writableEnded) return;
    if (last.trailers) this.res.addTrailers(last.trailers);
    this.res.end();
  }

  private flush(): void {
    this.flushScheduled = false;
    const chunk = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (this.closed || this.res.writableEnded) return;
    if (!this.res.headersSent) this.res.writeHead(200, { ...Object.fromEntries(this.header), "content-type": this.contentType });
    if (!chunk || chunk.byteLength === 0 || this.res.write(chunk) || this.draining) return;
    let done = (): void => undefined;
    const promise = new Promise<void>((resolve) => {
      done = () => {
        this.res.off("drain", done);
        this.draining = undefined;
        resolve();
      };
    });
    this.draining = { promise, done };
    this.res.once("drain", done);
  }
}

function headersOf(req: Http2ServerRequest): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  return headers;
}

/** The request body: exactly one uncompressed envelope, within `readMaxBytes`. */
async function readSingleMessage(req: Http2ServerRequest, readMaxBytes: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > readMaxBytes + 5) {
      throw new ConnectError(`message size is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted);
    }
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks, size);
  if (body.byteLength < 5) {
    throw new ConnectError("protocol error: missing input message for server-streaming method", Code.Unimplemented);
  }
  const flags = body[0] ?? 0;
  const length = body.readUInt32BE(1);
  if (flags !== 0) throw new ConnectError("protocol error: received a compressed or flagged request message without an encoding", Code.Internal);
  if (body.byteLength > 5 + length) {
    throw new ConnectError("protocol error: received extra input message for server-streaming method", Code.Unimplemented);
  }
  if (body.byteLength < 5 + length) throw new ConnectError("protocol error: premature end of request message", Code.InvalidArgument);
  return body.subarray(5);
}

function parseMessage(schema: DescMessage, bytes: Uint8Array): Message {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    throw new ConnectError(`parse binary: ${err instanceof Error ? err.message : String(err)}`, Code.Internal);
  }
}

async function* oneMessage<T>(message: T): AsyncIterable<T> {
  yield message;
}

async function* noMessages<T>(): AsyncIterable<T> {}

async function onlyMessage<T>(messages: AsyncIterable<T>): Promise<T> {
  let only: T | undefined;
  let count = 0;
  for await (const message of messages) {
    only = message;
    count++;
  }
  if (count !== 1 || only === undefined) {
    throw new ConnectError("protocol error: a server-streaming method takes exactly one input message", Code.Unimplemented);
  }
  return only;
}
