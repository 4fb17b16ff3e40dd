import type { ConsumerState } from "./stream-store.js";

/** A declared consumer that never subscribed: at the stream's start, holding nothing. */
export const NEVER_ATTACHED: ConsumerState = { seq: 0n, bytes: 0n, attached: 0, detachedAtMs: 0 };

/** `state` after one of its subscriptions began (`attached`) or ended at `timeMs`. */
export function withAttachment(state: ConsumerState | undefined, attached: boolean, timeMs: number): ConsumerState {
  const previous = state ?? NEVER_ATTACHED;
  const count = Math.max(0, previous.attached + (attached ? 1 : -1));
  return { ...previous, attached: count, detachedAtMs: count === 0 ? timeMs : 0 };
}
