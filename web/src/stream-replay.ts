import { Code, ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { PinType, type StreamRef } from "../../gen/mentatlab/v1/common_pb.js";
import { followSequenced } from "../../services/shared/resume.js";
import { subscribeCall } from "../../services/shared/watched-calls.js";
import type { Api } from "./api.js";
import { announcedResume } from "./resume.js";

export interface ReplayObserver {
  /** Decoded text of a text or JSON stream, as each payload arrives. */
  onText(chunk: string): void;
  /** Bytes received so far, for streams that are not text. */
  onBytes(total: number): void;
  /** Every payload as it arrives, with when the stream service stored it (epoch ms), for live players and latency. */
  onData?(data: Uint8Array, storedAtMs: number): void;
}

export interface ReplayResult {
  /** False when the follow was stopped before the producer ended the stream. */
  readonly ended: boolean;
  readonly bytes: number;
  /** The whole payload of an ended media stream, playable from a Blob URL. */
  readonly recording?: Blob;
}

function isTextStream(ref: StreamRef): boolean {
  return ref.payloadType === PinType.TEXT || ref.payloadType === PinType.JSON;
}

/**
 * Subscribes to a stream from its first retained event, resuming after the last one seen when the
 * connection drops. Media payloads are kept to play once the stream ends: browsers need the whole
 * recording to play it from a Blob, and it is the user's own stream, fetched on demand.
 */
export async function replayStream(api: Api, ref: StreamRef, signal: AbortSignal, observer: ReplayObserver): Promise<ReplayResult> {
  const text = isTextStream(ref);
  const decoder = new TextDecoder();
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let bytes = 0;
  let last = 0n;
  const events = followSequenced(
    subscribeCall(api.stream, ref.streamId),
    0n,
    announcedResume(() => `stream ${ref.streamId} after event ${last}`),
    signal,
  );
  for await (const event of events) {
    last = event.seq;
    const e = event.event;
    if (e.case === "data") {
      bytes += e.value.data.byteLength;
      observer.onData?.(e.value.data, event.time ? timestampMs(event.time) : Date.now());
      if (text) observer.onText(decoder.decode(e.value.data, { stream: true }));
      else {
        parts.push(new Uint8Array(e.value.data));
        observer.onBytes(bytes);
      }
    } else if (e.case === "error") {
      // Not a lost connection: the producer failed the stream, so this ends the follow.
      throw new ConnectError(`stream failed: ${e.value.message}`, Code.FailedPrecondition);
    } else if (e.case === "end") {
      return { ended: true, bytes, recording: text || parts.length === 0 ? undefined : new Blob(parts, { type: ref.mimeType || "application/octet-stream" }) };
    }
  }
  return { ended: false, bytes };
}
