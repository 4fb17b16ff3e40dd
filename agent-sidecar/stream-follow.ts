import { setTimeout as sleep } from "node:timers/promises";
import type { Client } from "@connectrpc/connect";
import type { StreamEvent, StreamService } from "../gen/mentatlab/v1/stream_pb.js";
import { backoffDelay, isTransient, type Backoff } from "./retry.js";

export interface FollowOptions {
  readonly backoff: Backoff;
  /** Give up after the stream service has been unreachable this long, in milliseconds. */
  readonly giveUpMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Follows a stream from `afterSeq` to its end, re-subscribing after the last sequence number seen when
 * the connection breaks (gateway restart, network blip): every event arrives once, in order. Ends after
 * stream_end or stream_error.
 */
export async function* followStream(
  client: Client<typeof StreamService>,
  streamId: string,
  afterSeq: bigint,
  options: FollowOptions,
): AsyncGenerator<StreamEvent> {
  let last = afterSeq;
  let failures = 0;
  let unreachableSince: number | undefined;
  for (;;) {
    try {
      for await (const event of client.subscribe({ streamId, afterSeq: last }, { signal: options.signal })) {
        // A resumed subscription may repeat what was already passed on; sequence numbers say so.
        if (event.seq <= last) continue;
        last = event.seq;
        failures = 0;
        unreachableSince = undefined;
        yield event;
        if (event.event.case === "end" || event.event.case === "error") return;
      }
      // The server ended the call without stream_end (e.g. it is shutting down): resume like a break.
    } catch (error) {
      unreachableSince ??= Date.now();
      if (options.signal?.aborted || !isTransient(error) || Date.now() - unreachableSince > options.giveUpMs) throw error;
    }
    await sleep(backoffDelay(options.backoff, ++failures), undefined, { signal: options.signal });
  }
}
