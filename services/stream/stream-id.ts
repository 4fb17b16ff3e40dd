import { randomBytes } from "node:crypto";

/**
 * A new stream id. The creation time leads, in fixed-width hex, so ids sort by age: listings go
 * newest-first by id alone and an id is a stable page cursor.
 */
export function newStreamId(nowMs: number): string {
  return `st_${nowMs.toString(16).padStart(12, "0")}${randomBytes(8).toString("hex")}`;
}

const STREAM_ID = /^st_[0-9a-f]{28}$/;

export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}

/** When a stream with this id (one `isStreamId` accepts) was created, in ms since the epoch. */
export function streamCreatedMs(id: string): number {
  return Number.parseInt(id.slice(3, 15), 16);
}
