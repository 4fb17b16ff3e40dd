import { Code, ConnectError } from "@connectrpc/connect";

/** One enveloped message as it arrived: `bytes` is the whole envelope, prefix included. */
export interface Envelope {
  readonly flags: number;
  readonly bytes: Uint8Array;
}

/**
 * Cuts a byte stream of gRPC/Connect envelopes (flags byte, big-endian u32 length, message) at message
 * boundaries, so each message can be passed on as it arrived without being decoded. An envelope that
 * lies within one chunk is handed out as a view of it; only envelopes split across chunks are copied.
 */
export class EnvelopeSplitter {
  private partial: Uint8Array[] = [];
  private partialBytes = 0;

  constructor(private readonly readMaxBytes: number) {}

  /** The envelopes completed by `chunk`, in order. */
  push(chunk: Uint8Array): Envelope[] {
    let data = chunk;
    if (this.partialBytes > 0) {
      this.partial.push(chunk);
      data = Buffer.concat(this.partial, this.partialBytes + chunk.byteLength);
      this.partial = [];
      this.partialBytes = 0;
    }
    const complete: Envelope[] = [];
    let offset = 0;
    while (data.byteLength - offset >= 5) {
      const length = new DataView(data.buffer, data.byteOffset + offset + 1, 4).getUint32(0);
      if (length > this.readMaxBytes) {
        throw new ConnectError(`message size ${length} is larger than configured readMaxBytes ${this.readMaxBytes}`, Code.ResourceExhausted);
      }
      if (data.byteLength - offset < 5 + length) break;
      complete.push({ flags: data[offset] ?? 0, bytes: data.subarray(offset, offset + 5 + length) });
      offset += 5 + length;
    }
    if (offset < data.byteLength) {
      this.partial.push(data.subarray(offset));
      this.partialBytes = data.byteLength - offset;
    }
    return complete;
  }

  /** True while part of an envelope is still waiting for the rest of its bytes. */
  get midMessage(): boolean {
    return this.partialBytes > 0;
  }
}
