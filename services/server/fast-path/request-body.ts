import { Code, ConnectError } from "@connectrpc/connect";
import type { Readable } from "node:stream";
import { compressedFlag, envelopeHeaderBytes } from "./framing.js";

/** One enveloped message as received: its flags, a view of its bytes, and of them with their 5-byte prefix. */
export interface ReceivedEnvelope {
  readonly flags: number;
  readonly data: Uint8Array;
  /** The whole envelope, to pass on as it arrived. */
  readonly framed: Uint8Array;
}

/** The whole request body, refused with RESOURCE_EXHAUSTED past `limit` bytes. */
export function readBody(body: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        cleanup();
        body.resume();
        reject(new ConnectError(`the request is larger than the server's limit of ${limit} bytes (MENTATLAB_READ_MAX_BYTES)`, Code.ResourceExhausted));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onClose = () => {
      cleanup();
      reject(new ConnectError("the peer closed the stream before the end of its message", Code.Canceled));
    };
    const onError = (err: unknown) => {
      cleanup();
      reject(new ConnectError("the stream failed before the end of its message", Code.Canceled, undefined, undefined, err));
    };
    const cleanup = () => {
      body.off("data", onData);
      body.off("end", onEnd);
      body.off("close", onClose);
      body.off("error", onError);
    };
    body.on("data", onData);
    body.once("end", onEnd);
    body.once("close", onClose);
    body.once("error", onError);
  });
}

/** The single message a unary or server-streaming request carries in its one envelope. */
export function singleEnvelope(body: Buffer, methodKind: string): Uint8Array {
  if (body.byteLength === 0) {
    throw new ConnectError(`protocol error: missing input message for ${methodKind} method`, Code.Unimplemented);
  }
  if (body.byteLength < envelopeHeaderBytes) {
    throw new ConnectError("protocol error: the request ended inside its envelope's 5-byte prefix", Code.InvalidArgument);
  }
  const flags = body[0]!;
  const length = body.readUInt32BE(1);
  if (flags !== 0) throw flaggedMessage(flags);
  if (body.byteLength > envelopeHeaderBytes + length) {
    throw new ConnectError(`protocol error: received extra input message for ${methodKind} method`, Code.Unimplemented);
  }
  if (body.byteLength < envelopeHeaderBytes + length) {
    throw new ConnectError("protocol error: the request ended inside its message", Code.InvalidArgument);
  }
  return body.subarray(envelopeHeaderBytes);
}

/**
 * Splits a body of envelopes into messages as its bytes arrive, pulling only as fast as the reader
 * reads (HTTP/2 flow control holds the sender back meanwhile).
 */
export async function* readEnvelopes(body: AsyncIterable<Buffer>, readMaxBytes: number): AsyncGenerator<ReceivedEnvelope> {
  const assembler = new EnvelopeAssembler(readMaxBytes);
  for await (const chunk of body) yield* assembler.push(chunk);
  if (assembler.midMessage) throw new ConnectError("protocol error: the request ended inside a message", Code.InvalidArgument);
}

/**
 * Cuts chunks of bytes into whole envelopes. An envelope inside one chunk is handed over as a view of
 * it; one spread over several is gathered, once, into a buffer of its size.
 */
export class EnvelopeAssembler {
  private readonly header = Buffer.allocUnsafe(envelopeHeaderBytes);
  private headerFill = 0;
  private flags = 0;
  // An envelope being gathered, its prefix included; `messageFill` counts the bytes in it so far.
  private message: Buffer | undefined;
  private messageFill = 0;

  constructor(private readonly readMaxBytes: number) {}

  /** The envelopes `chunk` completes, in order; throws RESOURCE_EXHAUSTED past `readMaxBytes`. */
  push(chunk: Buffer): ReceivedEnvelope[] {
    const complete: ReceivedEnvelope[] = [];
    let pos = 0;
    while (pos < chunk.byteLength) {
      if (this.message === undefined) {
        let length: number;
        const start = pos;
        if (this.headerFill === 0 && chunk.byteLength - pos >= envelopeHeaderBytes) {
          this.flags = chunk[pos]!;
          length = chunk.readUInt32BE(pos + 1);
          pos += envelopeHeaderBytes;
        } else {
          const taken = Math.min(envelopeHeaderBytes - this.headerFill, chunk.byteLength - pos);
          chunk.copy(this.header, this.headerFill, pos, pos + taken);
          this.headerFill += taken;
          pos += taken;
          if (this.headerFill < envelopeHeaderBytes) break;
          this.headerFill = 0;
          this.flags = this.header[0]!;
          length = this.header.readUInt32BE(1);
        }
        if (length > this.readMaxBytes) {
          throw new ConnectError(
            `a message of ${length} bytes is larger than the server's limit of ${this.readMaxBytes} bytes (MENTATLAB_READ_MAX_BYTES)`,
            Code.ResourceExhausted,
          );
        }
        if (pos - start === envelopeHeaderBytes && chunk.byteLength - pos >= length) {
          complete.push({ flags: this.flags, data: chunk.subarray(pos, pos + length), framed: chunk.subarray(start, pos + length) });
          pos += length;
          continue;
        }
        this.message = Buffer.allocUnsafe(envelopeHeaderBytes + length);
        this.message[0] = this.flags;
        this.message.writeUInt32BE(length, 1);
        this.messageFill = envelopeHeaderBytes;
      }
      const taken = Math.min(this.message.byteLength - this.messageFill, chunk.byteLength - pos);
      chunk.copy(this.message, this.messageFill, pos, pos + taken);
      this.messageFill += taken;
      pos += taken;
      if (this.messageFill === this.message.byteLength) {
        complete.push({ flags: this.flags, data: this.message.subarray(envelopeHeaderBytes), framed: this.message });
        this.message = undefined;
      }
    }
    return complete;
  }

  /** True while part of an envelope is still to come. */
  get midMessage(): boolean {
    return this.message !== undefined || this.headerFill > 0;
  }
}

/** The error for a received envelope with flags: this path takes only uncompressed data messages. */
export function flaggedMessage(flags: number): ConnectError {
  return (flags & compressedFlag) !== 0
    ? new ConnectError("protocol error: received a compressed message without a message encoding", Code.InvalidArgument)
    : new ConnectError(`protocol error: received a message with unexpected flags ${flags}`, Code.InvalidArgument);
}

/** Bytes queued from a body before it is paused, so HTTP/2 flow control holds the sender back. */
const queuedChunkBytes = 256 * 1024;

/**
 * A body's chunks one by one as they arrive. A Readable's own async iterator hands over everything
 * queued since the last read joined into one buffer, a copy of every byte that `readEnvelopes` would
 * then copy again to gather a message.
 */
export async function* chunksOf(body: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.byteLength;
    if (queued >= queuedChunkBytes) body.pause();
    notify();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onError = (err: unknown) => {
    failure = err;
    notify();
  };
  const onClose = () => {
    if (!body.readableEnded) failure ??= new ConnectError("the peer closed the stream before the end of its messages", Code.Canceled);
    notify();
  };
  body.on("data", onData);
  body.once("end", onEnd);
  body.once("error", onError);
  body.once("close", onClose);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk) {
        queued -= chunk.byteLength;
        if (queued < queuedChunkBytes && body.isPaused()) body.resume();
        yield chunk;
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    body.off("data", onData);
    body.off("end", onEnd);
    body.off("error", onError);
    body.off("close", onClose);
  }
}
