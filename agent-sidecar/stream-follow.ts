import type { Client } from "@connectrpc/connect";
import type { StreamEvent, StreamService } from "../gen/mentatlab/v1/stream_pb.js";
import { followSequenced } from "../services/shared/resume.js";
import { subscribeCall } from "../services/shared/watched-calls.js";
import { isTransient, type Backoff } from "./retry.js";

export interface FollowOptions {
  readonly backoff: Backoff;
  /** Give up after the stream service has been unreachable this long, in milliseconds. */
  readonly giveUpMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Follows a stream from `afterSeq` to its end, re-subscribing after the last sequence number seen when
 * the connection breaks (gateway restart, network blip) or the call ends before stream_end: every
 * event arrives once, in order. Ends after stream_end or stream_error.
 */
export function followStream(client: Client<typeof StreamService>, streamId: string, afterSeq: bigint, options: FollowOptions): AsyncGenerator<StreamEvent> {
  return followSequenced(
    subscribeCall(client, streamId),
    afterSeq,
    { initialDelayMs: options.backoff.initialMs, maxDelayMs: options.backoff.maxMs, giveUpAfterMs: options.giveUpMs, retryable: isTransient },
    options.signal,
  );
}
