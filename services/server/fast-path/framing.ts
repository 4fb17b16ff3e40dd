import { type DescField, type DescMessage, type Message, ScalarType, toBinary } from "@bufbuild/protobuf";

/**
 * The one place that knows how messages are framed on the wire: the 5-byte envelope of gRPC and the
 * Connect streaming protocol (flags, big-endian length), and how a message becomes the bytes after it.
 */

/** Envelope flag: the message is compressed (never sent by this path; refused when received). */
export const compressedFlag = 0x01;
/** Envelope flag of the Connect protocol's end-of-stream message (JSON with the status). */
export const endStreamFlag = 0x02;
export const envelopeHeaderBytes = 5;

/** A message as gRPC and Connect frame it: flags byte 0, big-endian length, message bytes. */
export function envelope(message: Uint8Array): Uint8Array {
  return flaggedEnvelope(0, message);
}

/** An envelope with `flags` set (compressed, or Connect's end of stream). */
export function flaggedEnvelope(flags: number, message: Uint8Array): Uint8Array {
  const framed = Buffer.allocUnsafe(envelopeHeaderBytes + message.byteLength);
  framed[0] = flags;
  framed.writeUInt32BE(message.byteLength, 1);
  framed.set(message, envelopeHeaderBytes);
  return framed;
}

/**
 * Bytes fields at least this long are written as the buffer the handler gave (a file or S3 chunk),
 * beside the encoding of the rest of the message, instead of being copied into a new one.
 */
const bulkBytesThreshold = 16 * 1024;

/**
 * One enveloped message as the buffers to write, in order. A small message is one buffer; one that
 * carries a bulk bytes field (top level, or one message field deep as in `DownloadResponse.chunk.data`)
 * is the envelope header with the encoding of everything else, then the bulk bytes themselves.
 * Protobuf allows fields in any order, so moving the bulk field last changes no decoded value.
 */
export function envelopeSegments(schema: DescMessage, message: Message): Uint8Array[] {
  const bulk = findBulkField(schema, message);
  if (!bulk) return [envelope(toBinary(schema, message))];
  const data = read(bulk.slot) as Uint8Array;
  if (!bulk.outer) {
    write(bulk.slot, emptyBytes);
    let rest: Uint8Array;
    try {
      rest = toBinary(schema, message);
    } finally {
      write(bulk.slot, data);
    }
    return [framedPrefix(rest, lengthDelimitedKey(bulk.field.number, data.byteLength), data.byteLength), data];
  }
  const inner = read(bulk.outer.slot) as Message;
  const outerValue = bulk.outer.slot.record[bulk.outer.slot.key];
  let innerRest: Uint8Array;
  let rest: Uint8Array;
  write(bulk.slot, emptyBytes);
  try {
    innerRest = toBinary(bulk.outer.field.message!, inner);
    bulk.outer.slot.record[bulk.outer.slot.key] = bulk.outer.slot.oneof ? { case: undefined } : undefined;
    try {
      rest = toBinary(schema, message);
    } finally {
      bulk.outer.slot.record[bulk.outer.slot.key] = outerValue;
    }
  } finally {
    write(bulk.slot, data);
  }
  const dataKey = lengthDelimitedKey(bulk.field.number, data.byteLength);
  const innerLength = innerRest.byteLength + dataKey.byteLength + data.byteLength;
  const outerKey = lengthDelimitedKey(bulk.outer.field.number, innerLength);
  const head = Buffer.concat([rest, outerKey, innerRest, dataKey]);
  return [framedPrefix(head, emptyBytes, data.byteLength), data];
}

const emptyBytes = new Uint8Array(0);

/** The envelope header for `head + tail + bulkLength` bytes, followed by `head` and `tail`. */
function framedPrefix(head: Uint8Array, tail: Uint8Array, bulkLength: number): Uint8Array {
  const length = head.byteLength + tail.byteLength + bulkLength;
  const out = Buffer.allocUnsafe(envelopeHeaderBytes + head.byteLength + tail.byteLength);
  out[0] = 0;
  out.writeUInt32BE(length, 1);
  out.set(head, envelopeHeaderBytes);
  out.set(tail, envelopeHeaderBytes + head.byteLength);
  return out;
}

/** The tag of a length-delimited field and the varint length that follows it. */
function lengthDelimitedKey(fieldNumber: number, length: number): Uint8Array {
  const bytes: number[] = [];
  for (let value of [(fieldNumber << 3) | 2, length]) {
    while (value > 0x7f) {
      bytes.push((value & 0x7f) | 0x80);
      value >>>= 7;
    }
    bytes.push(value);
  }
  return Uint8Array.from(bytes);
}

/**
 * Where one field's value sits in a message: `record[key]`, or for a member of a oneof
 * `record[key].value` with `key` the oneof's name. Plain data, not closures: this runs per message.
 */
interface Slot {
  readonly record: Record<string, unknown>;
  readonly key: string;
  readonly oneof: boolean;
}

function read(slot: Slot): unknown {
  const value = slot.record[slot.key];
  return slot.oneof ? (value as { value?: unknown }).value : value;
}

function write(slot: Slot, value: unknown): void {
  if (slot.oneof) (slot.record[slot.key] as { value?: unknown }).value = value;
  else slot.record[slot.key] = value;
}

/** The slot of `field` when it is set in `message`, else undefined. */
function slotOf(message: Message, field: DescField): Slot | undefined {
  const record = message as unknown as Record<string, unknown>;
  if (field.oneof) {
    const selected = record[field.oneof.localName] as { case: string | undefined };
    return selected.case === field.localName ? { record, key: field.oneof.localName, oneof: true } : undefined;
  }
  return record[field.localName] === undefined ? undefined : { record, key: field.localName, oneof: false };
}

interface BulkField {
  readonly field: DescField;
  readonly slot: Slot;
  /** The message field holding `field`, when the bulk bytes sit one level down. */
  readonly outer?: { readonly field: DescField & { message?: DescMessage }; readonly slot: Slot };
}

function findBulkField(schema: DescMessage, message: Message): BulkField | undefined {
  for (const field of schema.fields) {
    const slot = slotOf(message, field);
    if (!slot) continue;
    const value = read(slot);
    if (isBulkBytes(field, value)) return { field, slot };
    if (field.fieldKind !== "message") continue;
    for (const innerField of field.message.fields) {
      const innerSlot = slotOf(value as Message, innerField);
      if (innerSlot && isBulkBytes(innerField, read(innerSlot))) return { field: innerField, slot: innerSlot, outer: { field, slot } };
    }
  }
  return undefined;
}

function isBulkBytes(field: DescField, value: unknown): value is Uint8Array {
  return field.fieldKind === "scalar" && field.scalar === ScalarType.BYTES && value instanceof Uint8Array && value.byteLength >= bulkBytesThreshold;
}

/**
 * Follows the envelope boundaries of a byte stream without gathering any message, for a relay that
 * passes bytes on as they arrive: it says whether the stream stopped inside a message, and refuses
 * flagged (compressed) messages, which a relay could not pass on to a client that never asked for them.
 */
export class EnvelopeBoundaries {
  private headerFill = 0;
  private readonly header = new Uint8Array(envelopeHeaderBytes);
  /** Bytes of the current message's body still to come. */
  private remaining = 0;

  /** Accounts for `chunk`; throws on a flagged message. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.byteLength) {
      if (this.remaining > 0) {
        const skipped = Math.min(this.remaining, chunk.byteLength - pos);
        this.remaining -= skipped;
        pos += skipped;
        continue;
      }
      this.header[this.headerFill++] = chunk[pos++]!;
      if (this.headerFill < envelopeHeaderBytes) continue;
      this.headerFill = 0;
      if (this.header[0] !== 0) throw new Error(`a message with flags ${this.header[0]} (compressed or end-of-stream)`);
      this.remaining = new DataView(this.header.buffer).getUint32(1);
    }
  }

  /** True while part of a message is still to come. */
  get midMessage(): boolean {
    return this.headerFill > 0 || this.remaining > 0;
  }
}
