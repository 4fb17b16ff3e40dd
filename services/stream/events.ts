import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { type StreamEvent, StreamEventSchema, type StreamInfo, StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import type { Ending, PayloadInput } from "./stream-store.js";

// Builders shared by both store backends, so stored events look the same whichever one stored them.

export function startEvent(info: StreamInfo, timeMs: number): StreamEvent {
  return create(StreamEventSchema, {
    seq: 1n,
    time: timestampFromMs(timeMs),
    event: { case: "start", value: { stream: info } },
  });
}

/** stream_data as event `seq`, `offset` payload bytes into the stream. */
export function dataEvent(seq: bigint, payload: PayloadInput, offset: bigint, timeMs: number): StreamEvent {
  return create(StreamEventSchema, {
    seq,
    time: timestampFromMs(timeMs),
    event: { case: "data", value: { data: payload.data, attributes: { ...payload.attributes }, offset } },
  });
}

/** stream_end or stream_error as event `seq`; every event between stream_start and it is data. */
export function endingEvent(seq: bigint, totalBytes: bigint, ending: Ending, timeMs: number): StreamEvent {
  const time = timestampFromMs(timeMs);
  if (ending.error) {
    return create(StreamEventSchema, {
      seq,
      time,
      event: { case: "error", value: { message: ending.error.message, code: codeName(ending.error.code) } },
    });
  }
  return create(StreamEventSchema, {
    seq,
    time,
    event: { case: "end", value: { lastDataSeq: seq > 2n ? seq - 1n : 0n, totalBytes } },
  });
}

export function endingState(ending: Ending): StreamState {
  return ending.error ? StreamState.FAILED : StreamState.COMPLETED;
}

/** Connect's lower-snake code name, e.g. `deadline_exceeded`, as StreamError.code documents. */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
