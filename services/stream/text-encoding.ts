import { gzipSync } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { type StreamEvent, StreamEventSchema } from "../../gen/mentatlab/v1/stream_pb.js";

// Every subscriber of a stream shares the same event objects, so each payload is compressed once.
const compressed = new WeakMap<Uint8Array, Uint8Array | null>();

/**
 * The event as a gzip-accepting subscriber of a text stream gets it: data gzip'd with
 * content_encoding "gzip" when that makes it smaller, otherwise unchanged.
 */
export function gzipTextEvent(event: StreamEvent): StreamEvent {
  if (event.event.case !== "data") return event;
  const { data, attributes } = event.event.value;
  let packed = compressed.get(data);
  if (packed === undefined) {
    const candidate = new Uint8Array(gzipSync(data));
    packed = candidate.byteLength < data.byteLength ? candidate : null;
    compressed.set(data, packed);
  }
  if (packed === null) return event;
  return create(StreamEventSchema, {
    seq: event.seq,
    time: event.time,
    event: { case: "data", value: { data: packed, contentEncoding: "gzip", attributes } },
  });
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export function isWholeUtf8(data: Uint8Array): boolean {
  try {
    strictUtf8.decode(data);
    return true;
  } catch {
    return false;
  }
}
