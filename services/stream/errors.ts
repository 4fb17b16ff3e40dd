import { Code, ConnectError } from "@connectrpc/connect";
import { StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { redisUnavailable } from "../shared/redis.js";

// One place for the messages, so both store backends and the handlers say the same thing.

export function streamNotFound(streamId: string): ConnectError {
  return new ConnectError(`stream "${streamId}" not found in this workspace (ended streams expire a few minutes after their end)`, Code.NotFound);
}

export function streamEnded(streamId: string, state: StreamState): ConnectError {
  const how = state === StreamState.FAILED ? "failed" : "completed";
  return new ConnectError(`stream "${streamId}" has already ${how}; open a new stream with InitStream to publish more`, Code.FailedPrecondition);
}

export function behindRetained(streamId: string, afterSeq: bigint, oldestSeq: bigint): ConnectError {
  return new ConnectError(
    `stream "${streamId}" no longer retains events after seq ${afterSeq}; the oldest available is seq ${oldestSeq}: ` +
      `resubscribe with after_seq=${oldestSeq - 1n} (events in between are lost to this subscriber)`,
    Code.OutOfRange,
  );
}

/** A live subscriber whose connection took its events more slowly than the stream produced them. */
export function subscriberFellBehind(streamId: string, maxLagBytes: number, lastSeq: bigint, oldestSeq: bigint): ConnectError {
  return new ConnectError(
    `this subscriber of stream "${streamId}" fell more than ${maxLagBytes} bytes behind its newest event after seq ` +
      `${lastSeq}; the oldest available is seq ${oldestSeq}: resubscribe with after_seq=${lastSeq} to catch up ` +
      `(or a later seq to skip ahead), and read faster or raise STREAM_SUBSCRIBER_MAX_LAG_BYTES`,
    Code.OutOfRange,
  );
}

export function tooManyOpenStreams(user: string, limit: number): ConnectError {
  return new ConnectError(
    `user "${user}" already has ${limit} open streams, the most allowed at once; close one with CloseStream first`,
    Code.ResourceExhausted,
  );
}

export function maxDurationReached(streamId: string, deadlineMs: number): ConnectError {
  return new ConnectError(
    `stream "${streamId}" reached its maximum duration at ${new Date(deadlineMs).toISOString()} and was ended ` +
      `with stream_error; open a new stream with InitStream to continue`,
    Code.DeadlineExceeded,
  );
}

/** Why open subscriptions end when this process's stream service closes (shutdown, redeploy). */
export function serviceClosing(): ConnectError {
  return new ConnectError("the stream service is shutting down; resubscribe with after_seq set to the last seq you received", Code.Unavailable);
}

/**
 * Rethrows a failure of the shared store (Redis down or restarting) as UNAVAILABLE, which clients
 * retry, instead of the INTERNAL an unknown error would become. ConnectErrors pass unchanged.
 */
export const storeUnavailable: (err: unknown) => never = redisUnavailable("the stream store");

/** Why live subscribers of a stream stop when this process loses Redis while following it. */
export function followInterrupted(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  // The driver's message can name a server's socket path or address: it goes to the log, not the caller.
  console.error("stream store (Redis) failed while following a stream:", err instanceof Error ? err.message : err);
  return new ConnectError(
    "the stream store is unavailable (Redis did not answer); resubscribe with after_seq set to the last seq you received once it is back",
    Code.Unavailable,
    undefined,
    undefined,
    err,
  );
}

/** A stream created before the store (Redis) restarted without its data: its events are gone for good. */
export function streamDataLost(streamId: string, storeEmptySinceMs: number): ConnectError {
  return new ConnectError(
    `the data of stream "${streamId}" was lost: the stream store (Redis) came back without its data at ` +
      `${new Date(storeEmptySinceMs).toISOString()}, after the stream was created; the stream did not end, ` +
      "but its events cannot be recovered: open a new stream with InitStream",
    Code.DataLoss,
  );
}

/** Text of the stream_error event a stream gets when its maximum duration passes. */
export function maxDurationMessage(deadlineMs: number): string {
  return `the stream reached its maximum duration at ${new Date(deadlineMs).toISOString()}`;
}
