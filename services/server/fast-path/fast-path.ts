import { type DescMessage, fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, createHandlerContext, type HandlerContext, type Interceptor, type MethodImplSpec } from "@connectrpc/connect";
import { invokeUnaryImplementation, transformInvokeImplementation } from "@connectrpc/connect/protocol";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { CallWriter } from "./call-writer.js";
import { BatchingSink, CapturingSink, type EncodedRelay, type EncodedServerStream } from "./encoded-stream.js";
import { encodedKindOf, encodedSinkKey, encodedStreamSpec, rememberReceivedBytes, relaySpec } from "./encoded-specs.js";
import { unknownProcedure } from "../unknown-procedure.js";
import { compressedFlag, envelope, envelopeSegments, flaggedEnvelope } from "./framing.js";
import { asConnectError, connectUnary, protocolOf, type WireProtocol } from "./protocols.js";
import { compressMinBytes, gzip, negotiateGzip } from "./response-compression.js";
import { chunksOf, flaggedMessage, readBody, readEnvelopes, singleEnvelope } from "./request-body.js";

export interface FastPathOptions {
  /** The same interceptors Connect runs, outermost first. */
  readonly interceptors: readonly Interceptor[];
  readonly readMaxBytes: number;
  readonly writeMaxBytes: number;
  /** Aborted when the server gives up on draining: open calls end with its reason. */
  readonly shutdownSignal: AbortSignal;
  /** Type names of services whose responses are never compressed (media). */
  readonly uncompressedServices: ReadonlySet<string>;
}

export interface FastPath {
  /** Takes an HTTP/2 stream when it can serve it; false hands it to Connect. */
  take(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean;
  /** Calls taken so far, by `<protocol> <path>` (e.g. `grpc /pkg.Service/Method`), for operators and tests. */
  readonly taken: ReadonlyMap<string, number>;
}

/**
 * The procedures the fast path serves: every implementation mounted, relays, and pre-encoded server
 * streams, each taking the place of those before it for the same method.
 */
export interface FastPathProcedures {
  readonly methods: readonly MethodImplSpec[];
  readonly encodedStreams: readonly EncodedServerStream[];
  readonly relays: readonly EncodedRelay[];
}

/** The options as each call uses them (connect-es takes its interceptors as a mutable array). */
type CallOptions = Omit<FastPathOptions, "interceptors"> & { readonly interceptors: Interceptor[] };

/** What one call needs at hand, besides its stream. */
interface Call {
  readonly spec: MethodImplSpec;
  readonly protocol: WireProtocol;
  readonly context: HandlerContext;
  readonly writer: CallWriter;
  readonly stream: ServerHttp2Stream;
  /** Whether responses of 1 KiB and more are gzip'd. */
  readonly gzip: boolean;
  /** Set for a relay whose one response message is framed once the call is over (unary, client streaming). */
  readonly captured?: CapturingSink;
}

/**
 * The wire-speed core: every RPC shape (unary, client, server and bidi streaming) served straight on
 * node:http2 streams for gRPC and binary Connect, with the same interceptors, limits, deadlines,
 * cancellation and shutdown as connect-node, but without its generic stream pipeline: messages are
 * framed once, bulk bytes are written as the handler's own buffers, and received messages are
 * parsed from views of the received chunks. Handlers cannot tell which path served them.
 */
export function createFastPath(procedures: FastPathProcedures, fastPathOptions: FastPathOptions): FastPath {
  const options: CallOptions = { ...fastPathOptions, interceptors: [...fastPathOptions.interceptors] };
  const byPath = new Map<string, MethodImplSpec>();
  for (const spec of procedures.methods) byPath.set(pathOf(spec.method), spec);
  for (const relay of procedures.relays) byPath.set(pathOf(relay.method), relaySpec(relay));
  for (const encoded of procedures.encodedStreams) byPath.set(pathOf(encoded.method), encodedStreamSpec(encoded));
  const taken = new Map<string, number>();
  const take = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean => {
    const path = headers[":path"];
    const protocol = protocolOf(headers);
    // A cross-origin call needs the CORS answer the Connect path gives.
    if (path === undefined || !protocol || headers.origin !== undefined) return false;
    const spec = byPath.get(path);
    if (!spec) {
      answerUnknownMethod(stream, protocol, path);
      return true;
    }
    // Connect's unary and streaming protocols each fit one kind of method; Connect answers a mismatch.
    if (protocol.kind !== "grpc" && (protocol === connectUnary) !== (spec.kind === "unary")) return false;
    const key = `${protocol.kind} ${path}`;
    taken.set(key, (taken.get(key) ?? 0) + 1);
    void serveCall(spec, protocol, stream, headers, options);
    return true;
  };
  return { take, taken };
}

async function serveCall(
  spec: MethodImplSpec,
  protocol: WireProtocol,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  options: CallOptions,
): Promise<void> {
  stream.on("error", () => undefined);
  const timeout = protocol.parseTimeout(headers);
  const contextValues = createContextValues();
  const context = createHandlerContext({
    service: spec.method.parent,
    method: spec.method,
    protocolName: protocol.name,
    requestMethod: "POST",
    url: `http://${headers[":authority"] ?? "localhost"}${headers[":path"]}`,
    requestHeader: requestHeaders(headers),
    shutdownSignal: options.shutdownSignal,
    contextValues,
    ...(timeout.timeoutMs === undefined ? {} : { timeoutMs: timeout.timeoutMs }),
  });
  const gzipResponses = negotiateGzip(protocol, headers, !options.uncompressedServices.has(spec.method.parent.typeName));
  if (gzipResponses && protocol.enveloped) context.responseHeader.set(protocol.encodingHeader, "gzip");
  const writer = new CallWriter(stream, protocol, context.responseHeader);
  const encoded = encodedKindOf(spec);
  const captured = encoded === "relay" && (spec.kind === "unary" || spec.kind === "client_streaming") ? new CapturingSink() : undefined;
  if (encoded) contextValues.set(encodedSinkKey, captured ?? new BatchingSink(writer));
  const call: Call = { spec, protocol, context, stream, writer, gzip: gzipResponses && !encoded, ...(captured ? { captured } : {}) };
  // A client that goes away aborts the call's signal directly: no signal of its own to link per call.
  let finished = false;
  stream.once("close", () => {
    if (!finished) context.abort(new ConnectError("the client closed the stream", Code.Canceled));
  });
  try {
    if (timeout.error) throw timeout.error;
    if (spec.kind === "unary") await serveUnary(call, options);
    else await serveStreaming(call, options);
  } catch (err) {
    const error = asConnectError(err);
    context.abort(error);
    end(call, undefined, error);
    // Whatever the client still sends is read and dropped, so it is not stuck writing and sees the status.
    stream.resume();
  } finally {
    finished = true;
    context.abort(callEnded);
  }
}

// Aborting a call's signal once it is over releases its timers and listeners; a shared reason spares
// building (and capturing the stack of) a new DOMException per call. Not a ConnectError: nothing failed.
const callEnded = new DOMException("the call has ended", "AbortError");

async function serveUnary(call: Call, options: CallOptions): Promise<void> {
  const { context } = call;
  const spec = call.spec as Extract<MethodImplSpec, { kind: "unary" }>;
  const body = await readBody(call.stream, options.readMaxBytes + (call.protocol.enveloped ? 5 : 0));
  const input = parseRequest(call, call.protocol.enveloped ? singleEnvelope(body, "unary") : body);
  const output = await invokeUnaryImplementation(spec, context, input, options.interceptors);
  const encoded = call.captured ? capturedResponse(call.captured) : toBinary(spec.method.output, output);
  checkWriteLimit(encoded.byteLength, options.writeMaxBytes);
  if (!call.gzip || encoded.byteLength < compressMinBytes) {
    end(call, encoded, undefined);
    return;
  }
  const compressed = await gzip(encoded);
  if (call.protocol === connectUnary) {
    context.responseHeader.set(connectUnary.encodingHeader, "gzip");
    end(call, compressed, undefined);
  } else {
    call.writer.write([flaggedEnvelope(compressedFlag, compressed)]);
    end(call, undefined, undefined);
  }
}

async function serveStreaming(call: Call, options: CallOptions): Promise<void> {
  const { spec, context, writer } = call;
  const input = spec.kind === "server_streaming" ? singleInput(call, options) : streamedInput(call, options);
  const output = transformInvokeImplementation(spec, context, options.interceptors)(input);
  if (encodedKindOf(spec)) {
    // The implementation wrote its response to the call's sink; what it yields is a placeholder.
    for await (const _ of output) void _;
    if (call.captured) writer.write([envelope(capturedResponse(call.captured))]);
    context.signal.throwIfAborted();
    end(call, undefined, undefined);
    return;
  }
  for await (const message of output) {
    const segments = call.gzip ? await compressedSegments(spec.method.output, message as Message) : envelopeSegments(spec.method.output, message as Message);
    let size = 0;
    for (const segment of segments) size += segment.byteLength;
    checkWriteLimit(size - 5, options.writeMaxBytes);
    if (!writer.write(segments)) await writer.drained();
  }
  // A handler that returns once its call was aborted would end the stream OK: silently truncated.
  context.signal.throwIfAborted();
  end(call, undefined, undefined);
}

/** An RPC of a service this server does not serve, answered in the caller's protocol. */
function answerUnknownMethod(stream: ServerHttp2Stream, protocol: WireProtocol, path: string): void {
  stream.on("error", () => undefined);
  const error = unknownProcedure(path);
  const writer = new CallWriter(stream, protocol, new Headers());
  if (protocol === connectUnary) writer.endUnary(undefined, new Headers(), error);
  else writer.endStream(new Headers(), error);
  stream.resume();
}

/** Ends the call with OK (and, for unary calls, its encoded `message`) or with `error`. */
function end(call: Call, message: Uint8Array | undefined, error: ConnectError | undefined): void {
  const { writer, context, protocol } = call;
  if (protocol === connectUnary) {
    writer.endUnary(message, context.responseTrailer, error);
    return;
  }
  if (message) writer.write([envelope(message)]);
  writer.endStream(context.responseTrailer, error);
}

/** A message gzip'd when it is worth it, else as it is. */
async function compressedSegments(schema: DescMessage, message: Message): Promise<Uint8Array[]> {
  const bytes = toBinary(schema, message);
  if (bytes.byteLength < compressMinBytes) return [envelope(bytes)];
  return [flaggedEnvelope(compressedFlag, await gzip(bytes))];
}

/** The one request message of a server stream, read whole (it is small). */
async function* singleInput(call: Call, options: CallOptions): AsyncIterable<Message> {
  const body = await readBody(call.stream, options.readMaxBytes + 5);
  yield parseRequest(call, singleEnvelope(body, "server-streaming"));
}

/** The request messages of a client or bidi stream, parsed as they arrive. */
async function* streamedInput(call: Call, options: CallOptions): AsyncIterable<Message> {
  // Left open when the handler stops reading early, so the error it answers with still reaches the client.
  for await (const received of readEnvelopes(chunksOf(call.stream), options.readMaxBytes)) {
    if (received.flags !== 0) throw flaggedMessage(received.flags);
    yield parseRequest(call, received.data);
  }
}

/** A request message of the call, decoded; a relay also keeps the bytes to pass on. */
function parseRequest(call: Call, bytes: Uint8Array): Message {
  const message = parseMessage(call.spec.method.input, bytes);
  if (encodedKindOf(call.spec) === "relay") rememberReceivedBytes(message, bytes);
  return message;
}

/** The one response message a unary or client-streaming relay received, without its envelope prefix. */
function capturedResponse(sink: CapturingSink): Uint8Array {
  const [only, ...more] = sink.envelopes;
  if (!only || more.length > 0) throw new ConnectError(`the upstream sent ${sink.envelopes.length} response messages where one was due`, Code.Unavailable);
  if (only[0] !== 0) throw flaggedMessage(only[0]!);
  return only.subarray(5);
}

function parseMessage(schema: DescMessage, bytes: Uint8Array): Message {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConnectError(`the request is not a valid ${schema.typeName} message in protobuf binary: ${reason}`, Code.InvalidArgument);
  }
}

function checkWriteLimit(size: number, writeMaxBytes: number): void {
  if (size > writeMaxBytes) {
    throw new ConnectError(
      `a response message of ${size} bytes is larger than the server's limit of ${writeMaxBytes} bytes (MENTATLAB_WRITE_MAX_BYTES)`,
      Code.ResourceExhausted,
    );
  }
}

function pathOf(method: { readonly parent: { readonly typeName: string }; readonly name: string }): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function requestHeaders(headers: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* ":" */) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) out.append(name, item);
    else out.append(name, value);
  }
  return out;
}
