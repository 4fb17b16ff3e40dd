import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Codes a dropped connection, a restarting gateway or an overloaded server surface as. A peer that dies
 * mid-call resets its HTTP/2 streams with CANCEL, which arrives as `canceled`: callers that cancel on
 * purpose stop retrying through their own abort signal.
 */
const transientCodes: ReadonlySet<Code> = new Set([
  Code.Canceled,
  Code.Unavailable,
  Code.DeadlineExceeded,
  Code.Aborted,
  Code.Unknown,
  Code.Internal,
  Code.ResourceExhausted,
]);

/** Whether retrying the call may succeed: network and availability failures, not caller mistakes. */
export function isTransient(error: unknown): boolean {
  if (error instanceof ConnectError) return transientCodes.has(error.code);
  // Node socket errors (ECONNRESET, EPIPE…) that escaped the transport.
  return error instanceof Error && "code" in error && typeof error.code === "string" && error.code.startsWith("E");
}

export interface Backoff {
  /** First delay, milliseconds. */
  readonly initialMs: number;
  /** Cap, milliseconds. */
  readonly maxMs: number;
}

/** Exponential delay for attempt `n` (from 1), with jitter so replicas do not reconnect in lockstep. */
export function backoffDelay(backoff: Backoff, attempt: number): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (attempt - 1));
  return Math.round(base / 2 + (Math.random() * base) / 2);
}

/** Runs `operation` up to `attempts` times while it fails transiently. */
export async function withRetries<T>(
  attempts: number,
  backoff: Backoff,
  signal: AbortSignal | undefined,
  operation: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= attempts || !isTransient(error) || signal?.aborted) throw error;
      await sleep(backoffDelay(backoff, attempt), undefined, { signal });
    }
  }
}
