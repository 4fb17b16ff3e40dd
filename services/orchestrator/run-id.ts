import { randomBytes } from "node:crypto";

/** `run_` + creation time in base36 (fixed width) + randomness: ids sort by creation time, newest last. */
export function newRunId(now = Date.now()): string {
  return `run_${now.toString(36).padStart(9, "0")}${randomBytes(8).toString("hex")}`;
}
