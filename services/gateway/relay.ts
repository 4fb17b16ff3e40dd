import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { codeFromHttpStatus, findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { type ClientHttp2Stream, constants, type IncomingHttpHeaders } from "node:http2";
import { type EncodedRelay, type EncodedSink, EnvelopeAssembler, EnvelopeBoundaries, readBody } from "../server/fast-path/index.js";
import { injectTraceContext } from "../shared/telemetry/index.js";
import { forwardedHeaders } from "./forward.js";
import type { UpstreamSession } from "./upstream-session.js";

/**
 * Every method of `service`, relayed by the gateway on the fast path to the process that owns it (see
 * `relayMethod`). Calls the fast path does not take (HTTP/1.1, gRPC-web, JSON) use the Connect
 * forwarder mounted beside it.
 */
export function relayService(service: DescService, upstream: UpstreamSession, owner: string, readMaxBytes: number): EncodedRelay[] {
  return service.methods.map((method) => relayMethod(method, upstream, owner, readMaxBytes));
}

/**
 * One method at the gateway of the distributed mesh, relayed still encoded: once the gateway's
 * interceptors have accepted the call (and each request message), it is made to the owning process
 * over gRPC on a shared HTTP/2 connection; request messages go up as the bytes they arrived as and
 * the upstream's response envelopes come back as they arrived, never decoded or re-encoded. Each side's
 * pace reaches the other through HTTP/2 flow control. The upstream's status becomes the call's, and a
 * lost upstream is UNAVAILABLE.
 */
export function relayMethod(method: DescMethod, upstream: UpstreamSession, owner: string, readMaxBytes: number): EncodedRelay {
  const path = `/${method.parent.typeName}/${method.name}`;
  // A unary or client-streaming answer is framed again by the caller's protocol, so it is read as a message;
  // a stream of them goes on as the bytes arrive.
  const oneResponse = method.methodKind === "unary" || method.methodKind === "client_streaming";
  return {
    method,
    async serve(requests, context, out) {
      context.signal.throwIfAborted();
      const call = upstream.request(upstreamHeaders(path, context));
      // A refused or lost connection surfaces as the reads below failing; an unheard 'error' would crash.
      call.on("error", () => undefined);
      const cancel = () => call.close(constants.NGHTTP2_CANCEL);
      context.signal.addEventListener("abort", cancel, { once: true });
      let headers: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders | undefined;
      call.once("response", (received) => (headers = received));
      call.once("trailers", (received) => (trailers = received));
      // A request the interceptors refuse (or a client that goes away) ends the upstream call too;
      // that refusal, not the cancelled upstream, is what the caller is told.
      let sendFailure: unknown;
      const sending = sendRequests(call, requests).catch((err: unknown) => {
        sendFailure = err;
        cancel();
      });
      let readToEnd = false;
      try {
        if (oneResponse) {
          // One small answer: read whole, then cut (no per-chunk generators on the unary hot path).
          const assembler = new EnvelopeAssembler(readMaxBytes);
          for (const { flags, framed } of assembler.push(await readBody(call, readMaxBytes + 5))) {
            if (flags !== 0) throw new ConnectError(`the ${owner} process sent a compressed or flagged message`, Code.Unavailable);
            out.write(framed);
          }
          if (assembler.midMessage) throw new ConnectError(`the ${owner} process's answer ended inside a message; retry`, Code.Unavailable);
        } else {
          await passThrough(call, out, owner);
        }
        readToEnd = true;
      } catch (err) {
        if (sendFailure !== undefined) throw sendFailure;
        context.signal.throwIfAborted();
        // CANCELED here is the upstream stream closing under us (the caller's own abort was ruled out above).
        if (err instanceof ConnectError && err.code !== Code.Canceled) throw err;
        throw new ConnectError(`lost the connection to the ${owner} process; retry`, Code.Unavailable, undefined, undefined, err);
      } finally {
        context.signal.removeEventListener("abort", cancel);
        if (!readToEnd) cancel();
      }
      if (sendFailure !== undefined) throw sendFailure;
      context.signal.throwIfAborted();
      const error = outcome(owner, Number(headers[":status"]), headers, trailers);
      if (error) throw error;
      // The upstream answered OK: whatever the request side still has to say is of no use now.
      void sending;
    },
  };
}

/**
 * Passes a response stream's bytes on as they arrive (gRPC and Connect frame data messages alike), in
 * the chunks HTTP/2 delivered, without gathering messages split across frames; only their boundaries
 * are followed, to tell a stream cut inside a message. Read in flowing mode, paused while the caller's
 * connection is full: an async iterator would concatenate (copy) whatever chunks had queued up.
 */
function passThrough(body: ClientHttp2Stream, out: EncodedSink, owner: string): Promise<void> {
  const boundaries = new EnvelopeBoundaries();
  return new Promise((resolve, reject) => {
    const fail = (error: unknown) => {
      body.off("data", onData);
      body.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      try {
        boundaries.push(chunk);
      } catch (err) {
        fail(new ConnectError(`the ${owner} process sent ${err instanceof Error ? err.message : String(err)}`, Code.Unavailable));
        return;
      }
      if (!out.write(chunk)) {
        body.pause();
        out.ready().then(() => body.resume(), fail);
      }
    };
    body.on("data", onData);
    body.once("error", fail);
    body.once("end", () => {
      if (boundaries.midMessage) fail(new ConnectError(`the connection to the ${owner} process ended inside a message; retry`, Code.Unavailable));
      else resolve();
    });
    // Reset or lost before the end: 'close' without 'end'.
    body.once("close", () => {
      if (!body.readableEnded) fail(new ConnectError(`lost the connection to the ${owner} process; retry`, Code.Unavailable));
    });
  });
}

/** Writes each request message up as an envelope, waiting while the upstream's window is full. */
async function sendRequests(call: ClientHttp2Stream, requests: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const message of requests) {
    if (call.closed || call.destroyed) return;
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(message.byteLength, 1);
    call.cork();
    call.write(prefix);
    const more = call.write(message);
    call.uncork();
    if (!more) await drained(call);
  }
  if (!call.closed && !call.destroyed) call.end();
}

function drained(call: ClientHttp2Stream): Promise<void> {
  if (call.closed || call.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("close", done);
      resolve();
    };
    call.once("drain", done);
    call.once("close", done);
  });
}

function upstreamHeaders(path: string, context: HandlerContext): Record<string, string> {
  const headers: Record<string, string> = { ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers" };
  for (const name of forwardedHeaders) {
    const value = context.requestHeader.get(name);
    if (value !== null) headers[name] = value;
  }
  // With tracing on, the owning process's span becomes a child of this gateway call's span.
  injectTraceContext(headers);
  const timeoutMs = context.timeoutMs();
  if (timeoutMs !== undefined) headers["grpc-timeout"] = `${Math.max(1, Math.ceil(timeoutMs))}m`;
  return headers;
}

/** The upstream call's outcome once its body is read: an error, or undefined for OK. */
function outcome(owner: string, status: number, headers: IncomingHttpHeaders, trailers: IncomingHttpHeaders | undefined): ConnectError | undefined {
  if (status !== 200) return new ConnectError(`the ${owner} process answered HTTP ${status}`, codeFromHttpStatus(status));
  // A trailers-only response carries its status in the headers.
  const statusSource = trailers ?? (headers["grpc-status"] !== undefined ? headers : undefined);
  if (!statusSource) return new ConnectError(`the ${owner} process ended the call without a status; retry`, Code.Unavailable);
  return findTrailerError(toHeaders(statusSource));
}

function toHeaders(incoming: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, String(item));
  }
  return headers;
}
