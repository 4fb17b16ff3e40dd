import { setTimeout as sleep } from "node:timers/promises";
import { isRetryable } from "../services/shared/retryable.js";

/**
 * Whether a sidecar call is worth repeating. Its calls are the attempt's own transfers (uploads,
 * downloads, stream relays), repeatable and bounded by attempts or a give-up time, so besides what
 * always is retryable it also retries limits that may lift and streams broken mid-transfer.
 */
export function isTransient(error: unknown): boolean {
  return isRetryable(error, { limits: true, brokenStreams: true });
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
