import { Code, ConnectError } from "@connectrpc/connect";
import type { RawData, WebSocket } from "ws";
import { type Deferred, deferred } from "../shared/deferred.js";

/** One message received on a WebSocket: a JSON text frame, or a binary frame (a payload). */
export type Frame = ({ readonly kind: "text"; readonly value: Record<string, unknown> } | { readonly kind: "binary"; readonly bytes: Uint8Array }) & {
  /** Bytes the frame carried, counted against the reader's bound. */
  readonly size: number;
};

/**
 * The frames a client sends, pulled one at a time. Frames not yet taken are bounded by `maxBytes`
 * (a bound in bytes, so a flood of small frames is held back as a large payload would be):
 * past it the socket stops being read (`ws.pause()`), so TCP flow control slows the client, and
 * reading resumes once the consumer (the store, through Publish's read-ahead) has caught up.
 */
export class FrameReader {
  private readonly frames: Frame[] = [];
  private bytes = 0;
  private ended = false;
  private wake: Deferred<void> | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly maxBytes: number,
  ) {
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const bytes = asBytes(data);
      const size = bytes.byteLength;
      this.frames.push(isBinary ? { kind: "binary", bytes, size } : { kind: "text", value: parseTextFrame(bytes), size });
      this.bytes += size;
      if (this.bytes > this.maxBytes) ws.pause();
      this.wake?.resolve();
    });
    ws.once("close", () => {
      this.ended = true;
      this.wake?.resolve();
    });
  }

  /** The next frame, or undefined once the socket closed. */
  async next(): Promise<Frame | undefined> {
    while (this.frames.length === 0 && !this.ended) {
      this.wake = deferred();
      await this.wake.promise;
    }
    const frame = this.frames.shift();
    if (frame) {
      this.bytes -= frame.size;
      if (this.ws.isPaused && this.bytes <= this.maxBytes / 2) this.ws.resume();
    }
    return frame;
  }
}

/** A text frame as the JSON object it must be, or a record of why not (reported when it is read). */
function parseTextFrame(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return { type: undefined, invalid: 'a text frame must be a JSON object such as {"type": "stream_start"}' };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { type: undefined, invalid: "a text frame must be a JSON object, not an array or a scalar" };
  }
  return value as Record<string, unknown>;
}

/** The `type` of a text frame, refusing one that is not JSON or has no string `type`. */
export function frameType(frame: Record<string, unknown>): string {
  if (typeof frame.invalid === "string") throw new ConnectError(frame.invalid, Code.InvalidArgument);
  if (typeof frame.type !== "string") throw new ConnectError('a text frame needs a string "type", e.g. "stream_data"', Code.InvalidArgument);
  return frame.type;
}

/** A non-negative integer field sent as a JSON number or a decimal string; 0 when absent. */
export function seqField(frame: Record<string, unknown>, name: string): bigint {
  const raw = frame[name];
  if (raw === undefined || raw === null) return 0n;
  const text = typeof raw === "number" && Number.isSafeInteger(raw) ? String(raw) : raw;
  if (typeof text !== "string" || !/^\d{1,16}$/.test(text)) {
    throw new ConnectError(`"${name}" must be a non-negative integer, got ${JSON.stringify(raw)}`, Code.InvalidArgument);
  }
  return BigInt(text);
}

/** `attributes` as a string map; absent is empty. */
export function attributesField(frame: Record<string, unknown>): Record<string, string> {
  const raw = frame.attributes;
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "object" || Array.isArray(raw) || !Object.values(raw).every((value) => typeof value === "string")) {
    throw new ConnectError('"attributes" must be an object of string values, e.g. {"pts": "0.25"}', Code.InvalidArgument);
  }
  return raw as Record<string, string>;
}

function asBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
