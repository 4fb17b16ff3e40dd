import type { ConnectError } from "@connectrpc/connect";
import { trailerMux } from "@connectrpc/connect/protocol-connect";
import type { OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { connectUnary, grpc, type WireProtocol } from "./protocols.js";

/**
 * Writes one call's response on a raw HTTP/2 stream: headers once (at the first message, so a handler
 * can still set some before), enveloped messages as lists of buffers in one corked write, then the
 * status as the protocol carries it. Writes after the client has gone are dropped.
 */
export class CallWriter {
  private headersSent = false;
  private closed = false;
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly protocol: WireProtocol,
    /** Headers the handler or an interceptor set, sent with the first bytes. */
    private readonly header: Headers,
  ) {
    stream.once("close", () => {
      this.closed = true;
      this.releaseWaiters();
    });
    stream.on("drain", () => this.releaseWaiters());
  }

  /** True once the client can no longer receive anything. */
  get gone(): boolean {
    return this.closed || this.stream.destroyed;
  }

  /** Writes one message's buffers; false means wait for `drained()` before writing more. */
  write(segments: readonly Uint8Array[]): boolean {
    if (this.gone) return true;
    this.sendHeaders();
    if (segments.length === 1) return this.stream.write(segments[0]);
    this.stream.cork();
    let more = true;
    for (const segment of segments) more = this.stream.write(segment);
    this.stream.uncork();
    return more;
  }

  /** Resolves once the stream accepts more (or is gone). */
  drained(): Promise<void> {
    if (this.gone || !this.stream.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Ends an enveloped (gRPC or Connect streaming) response with OK or `error`. */
  endStream(trailer: Headers, error: ConnectError | undefined): void {
    if (this.gone) return;
    if (this.protocol === grpc) {
      const trailers = toHttp2Headers(grpc.trailers(trailer, error));
      if (!this.headersSent) {
        // Trailers-only: status in the one HEADERS frame, as gRPC servers answer a call that fails at once.
        this.headersSent = true;
        this.stream.respond({ ...this.responseHeaders(), ...trailers }, { endStream: true });
        return;
      }
      this.stream.once("wantTrailers", () => this.stream.sendTrailers(trailers));
      this.stream.end();
      return;
    }
    if (this.protocol.kind === "connect-stream") {
      this.sendHeaders();
      this.stream.end(this.protocol.endStream(trailer, error));
    }
  }

  /** Ends a unary Connect response: the message, or the error as JSON with its HTTP status. */
  endUnary(message: Uint8Array | undefined, trailer: Headers, error: ConnectError | undefined): void {
    if (this.gone) return;
    this.headersSent = true;
    let status = 200;
    let body = message ?? new Uint8Array(0);
    let contentType: string = connectUnary.responseContentType;
    if (error) {
      ({ status, body } = connectUnary.error(error, this.header));
      contentType = "application/json";
    }
    const header = toHttp2Headers(trailerMux(this.header, trailer));
    this.stream.respond({ ...header, ":status": status, "content-type": contentType, "content-length": body.byteLength });
    this.stream.end(body);
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(this.responseHeaders(), this.protocol === grpc ? { waitForTrailers: true } : {});
  }

  private responseHeaders(): OutgoingHttpHeaders {
    return { ...toHttp2Headers(this.header), ":status": 200, "content-type": this.protocol.responseContentType };
  }

  private releaseWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const release of waiters) release();
  }
}

function toHttp2Headers(headers: Headers | OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (!(headers instanceof Headers)) return headers;
  const out: OutgoingHttpHeaders = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}
