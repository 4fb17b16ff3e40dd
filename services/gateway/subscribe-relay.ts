import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { endStreamFromJson, endStreamFlag } from "@connectrpc/connect/protocol-connect";
import { codeFromHttpStatus, findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { constants, type IncomingHttpHeaders } from "node:http2";
import { StreamService, SubscribeRequestSchema } from "../../gen/mentatlab/v1/stream_pb.js";
import { type EncodedServerStream, envelope } from "../server/fast-path/index.js";
import { EnvelopeSplitter } from "./envelope-splitter.js";
import { injectTraceContext } from "../shared/telemetry/index.js";
import { forwardedHeaders } from "./forward.js";
import type { UpstreamSession } from "./upstream-session.js";

/** How one wire protocol asks for a server stream and says how it ended. */
interface Wire {
  readonly contentType: string;
  timeoutHeader(timeoutMs: number): Record<string, string>;
  /** The stream's outcome once the body is read: an error, or undefined for OK. */
  outcome(status: number, headers: Headers, trailers: Headers | undefined, endStream: Uint8Array | undefined): ConnectError | undefined;
}

const grpcWire: Wire = {
  contentType: "application/grpc+proto",
  timeoutHeader: (ms) => ({ "grpc-timeout": `${Math.max(1, Math.ceil(ms))}m` }),
  outcome(status, headers, trailers) {
    if (status !== 200) return new ConnectError(`upstream answered HTTP ${status}`, codeFromHttpStatus(status));
    // A trailers-only response carries its status in the headers.
    const statusSource = trailers ?? (headers.has("grpc-status") ? headers : undefined);
    if (!statusSource) return new ConnectError("the stream service ended the stream without a status", Code.Unavailable);
    return findTrailerError(statusSource);
  },
};

const connectWire: Wire = {
  contentType: "application/connect+proto",
  timeoutHeader: (ms) => ({ "connect-timeout-ms": String(Math.max(1, Math.ceil(ms))) }),
  outcome(status, _headers, _trailers, endStream) {
    if (status !== 200) return new ConnectError(`upstream answered HTTP ${status}`, codeFromHttpStatus(status));
    if (!endStream) return new ConnectError("the stream service ended the stream without an end-stream message", Code.Unavailable);
    return endStreamFromJson(endStream).error;
  },
};

/**
 * Subscribe at the gateway of the distributed mesh, on the encoded fast path: once the gateway's
 * interceptors have accepted the call, it is made to the stream process over raw HTTP/2 in the same
 * protocol, and the upstream's envelopes go to the subscriber as they arrived, never decoded or
 * re-encoded, so the gateway adds a copy per event instead of a decode and an encode per subscriber.
 * The subscriber's pace reaches the stream process through HTTP/2 flow control: the upstream stream is
 * not read while the subscriber's connection is full. The end of the upstream stream becomes the same
 * ConnectError a direct subscriber would get.
 */
export function relaySubscribe(
  upstream: UpstreamSession,
  readMaxBytes: number,
): EncodedServerStream<typeof StreamService.method.subscribe> {
  const path = `/${StreamService.typeName}/${StreamService.method.subscribe.name}`;
  return {
    method: StreamService.method.subscribe,
    async serve(request, context, out) {
      const wire = context.protocolName === "connect" ? connectWire : grpcWire;
      context.signal.throwIfAborted();
      const call = upstream.request(requestHeaders(path, wire, context));
      const cancel = () => call.close(constants.NGHTTP2_CANCEL);
      context.signal.addEventListener("abort", cancel, { once: true });
      let headers: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders | undefined;
      call.once("response", (received) => (headers = received));
      call.once("trailers", (received) => (trailers = received));
      call.end(envelope(toBinary(SubscribeRequestSchema, request)));
      const splitter = new EnvelopeSplitter(readMaxBytes);
      let endStream: Uint8Array | undefined;
      let readToEnd = false;
      try {
        for await (const chunk of call as AsyncIterable<Buffer>) {
          for (const { flags, bytes } of splitter.push(chunk)) {
            if (flags === endStreamFlag && wire === connectWire) {
              endStream = bytes.subarray(5);
              continue;
            }
            if (flags !== 0) throw new ConnectError("the stream service sent a compressed or flagged message", Code.Internal);
            if (!out.write(bytes)) await out.ready();
          }
        }
        readToEnd = true;
      } catch (err) {
        context.signal.throwIfAborted();
        if (err instanceof ConnectError) throw err;
        throw new ConnectError("lost the connection to the stream service", Code.Unavailable, undefined, undefined, err);
      } finally {
        context.signal.removeEventListener("abort", cancel);
        if (!readToEnd) cancel();
      }
      context.signal.throwIfAborted();
      if (splitter.midMessage) {
        throw new ConnectError("the connection to the stream service ended mid-stream", Code.Unavailable);
      }
      const error = wire.outcome(Number(headers[":status"]), toHeaders(headers), trailers && toHeaders(trailers), endStream);
      if (error) throw error;
    },
  };
}

function requestHeaders(path: string, wire: Wire, context: HandlerContext): Record<string, string> {
  const headers: Record<string, string> = { ":method": "POST", ":path": path, "content-type": wire.contentType, te: "trailers" };
  for (const name of forwardedHeaders) {
    const value = context.requestHeader.get(name);
    if (value !== null) headers[name] = value;
  }
  // With tracing on, the stream process's span becomes a child of this gateway call's span.
  injectTraceContext(headers);
  const timeoutMs = context.timeoutMs();
  return timeoutMs === undefined ? headers : { ...headers, ...wire.timeoutHeader(timeoutMs) };
}

function toHeaders(incoming: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, String(item));
  }
  return headers;
}
