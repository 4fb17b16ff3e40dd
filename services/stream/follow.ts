import type { StreamEvent } from "../../gen/mentatlab/v1/stream_pb.js";
import { type EventWindow, isTerminal } from "./event-window.js";

/** Where a follower reads: a window of recent events and the store behind it. */
export interface RetainedEvents {
  readonly window: EventWindow;
  /**
   * Up to `limit` stored events after `afterSeq`, oldest first, for a follower behind the window.
   * Throws OUT_OF_RANGE when the event right after `afterSeq` is no longer retained.
   */
  fetchAfter(afterSeq: bigint, limit: number): Promise<StreamEvent[]>;
  /** Payload bytes a live follower may fall behind the newest event before it is cut off. */
  readonly maxLagBytes: number;
  /** The OUT_OF_RANGE a follower cut off after receiving `lastSeq` gets. */
  fellBehind(lastSeq: bigint): Error;
}

const FETCH_LIMIT = 256;
// When the store has nothing newer yet but the window starts ahead, the event is in flight to the store's reader.
const REFETCH_DELAY_MS = 20;

/**
 * Events after `afterSeq`, in order, each once, ending after stream_end/stream_error. Reads from the
 * window while it has the next seq and falls back to the store when the follower is behind it.
 * A follower that once caught up with the newest event and then falls more than `maxLagBytes` behind
 * it is cut off with `fellBehind`: its backlog is bounded, and it never holds back the publisher or
 * other followers, who read the same window at their own pace. A follower replaying history it asked
 * for is not live yet and reads at its own pace.
 * `onDone` runs however the follower stops. One generator, no nesting: every layer of async iteration
 * costs each delivery to each subscriber several promise hops.
 */
export async function* follow(
  source: RetainedEvents,
  afterSeq: bigint,
  signal: AbortSignal,
  onDone: () => void = () => undefined,
): AsyncGenerator<StreamEvent> {
  let next = Number(afterSeq) + 1;
  let live = false;
  // One abort listener per follower rather than one per wait (waits happen once per event), and no
  // Promise.race against a long-lived promise, which would keep a reaction per wait until it settles.
  let wakeEarly: (() => void) | undefined;
  // A flag, not signal.throwIfAborted() per event: on a composite signal (AbortSignal.any) every
  // check walks its sources, a cost paid per delivery to every subscriber.
  let aborted = signal.aborted;
  const onAbort = (): void => {
    aborted = true;
    wakeEarly?.();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  const until = (event: Promise<unknown>): Promise<void> =>
    new Promise<void>((resolve) => {
      wakeEarly = resolve;
      void event.then(() => resolve());
    });
  try {
    for (;;) {
      if (aborted) signal.throwIfAborted();
      const event = source.window.at(next);
      if (event) {
        if (live && source.window.bytesBehind(next) > source.maxLagBytes) throw source.fellBehind(BigInt(next - 1));
        yield event;
        if (isTerminal(event)) return;
        next++;
        continue;
      }
      const first = source.window.first;
      if (first === undefined || next >= first) {
        live = true;
        await until(source.window.changed());
        continue;
      }
      const batch = await source.fetchAfter(BigInt(next - 1), FETCH_LIMIT);
      if (batch.length === 0) {
        await until(new Promise((resolve) => setTimeout(resolve, REFETCH_DELAY_MS)));
        continue;
      }
      for (const stored of batch) {
        yield stored;
        if (isTerminal(stored)) return;
        next++;
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    onDone();
  }
}
