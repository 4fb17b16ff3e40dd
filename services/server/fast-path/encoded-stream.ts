import type { DescMethod, DescMethodServerStreaming, MessageShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { CallWriter } from "./call-writer.js";

/**
 * Where a handler writes a server stream's messages, each already encoded as an envelope (see
 * `envelope`). Messages written in one tick go out in one write; a client that reads slowly makes
 * `write` return false until `ready()` resolves, so nothing is buffered without bound.
 */
export interface EncodedSink {
  /**
   * Queues one enveloped message, whole or as the buffers it is made of (see `envelopeSegments`);
   * false means wait for `ready()` before writing more.
   */
  write(envelope: Uint8Array | readonly Uint8Array[]): boolean;
  /** Resolves once queued messages are handed to the connection and it accepts more. */
  ready(): Promise<void>;
}

/**
 * A server-streaming procedure whose fast-path handler writes pre-encoded messages: a message shared
 * by many subscribers is encoded once instead of once per subscriber. The Connect handler mounted for
 * the same method serves the other protocols.
 */
export interface EncodedServerStream<M extends DescMethodServerStreaming = DescMethodServerStreaming> {
  readonly method: M;
  /**
   * Serves one call. Resolving ends the stream with OK; a rejection (a ConnectError) ends it with that
   * error. Must stop, by throwing, once `context.signal` aborts.
   */
  serve(request: MessageShape<M["input"]>, context: HandlerContext, out: EncodedSink): Promise<void>;
}

/** Byte budget of messages queued within one tick before a writer is told to wait. */
const queuedBytesLimit = 64 * 1024;

/** An EncodedSink over a call's writer: one corked write per tick of every queued envelope. */
export class BatchingSink implements EncodedSink {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private blocked = false;

  constructor(private readonly writer: CallWriter) {}

  write(envelope: Uint8Array | readonly Uint8Array[]): boolean {
    for (const part of envelope instanceof Uint8Array ? [envelope] : envelope) {
      this.pending.push(part);
      this.pendingBytes += part.byteLength;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the current burst of microtasks: every message ready now leaves in one write.
      process.nextTick(() => this.flush());
    }
    return !this.blocked && this.pendingBytes < queuedBytesLimit;
  }

  async ready(): Promise<void> {
    if (this.pendingBytes >= queuedBytesLimit) this.flush();
    if (this.blocked) await this.writer.drained();
    this.blocked = false;
  }

  /** Hands everything queued to the writer (also called before the stream ends). */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.writer.write(batch)) this.blocked = true;
  }
}

/**
 * A procedure of any shape whose messages the fast path passes on still encoded (the distributed
 * gateway relaying a call to the process that owns it). The interceptors still see every request
 * message decoded, as for any other call, and refuse what they would refuse; what they accept is
 * handed on as the bytes it arrived as.
 */
export interface EncodedRelay<M extends DescMethod = DescMethod> {
  readonly method: M;
  /**
   * Serves one call: `requests` yields each accepted request message's bytes (no envelope prefix);
   * every response message goes to `out` as an envelope, exactly one for unary and client-streaming
   * methods. Resolving ends the call with OK; a rejection (a ConnectError) ends it with that error.
   */
  serve(requests: AsyncIterable<Uint8Array>, context: HandlerContext, out: EncodedSink): Promise<void>;
}

/** An EncodedSink that keeps what it is given: the response of a unary relay, framed by the call's protocol. */
export class CapturingSink implements EncodedSink {
  readonly envelopes: Uint8Array[] = [];

  write(envelope: Uint8Array | readonly Uint8Array[]): boolean {
    this.envelopes.push(envelope instanceof Uint8Array ? envelope : Buffer.concat(envelope));
    return true;
  }

  async ready(): Promise<void> {}

  flush(): void {}
}
