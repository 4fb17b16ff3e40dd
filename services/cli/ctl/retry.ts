import { setTimeout as sleep } from "node:timers/promises";
import { isTransient } from "./exit-codes.js";

/** How often and how patiently a resumable operation retries after a dropped connection. */
export interface RetryOptions {
  /** Most consecutive failed attempts without progress before giving up. */
  readonly attempts: number;
  readonly initialDelayMs: number;
  /** Told about each retry, so the user sees why the command pauses. */
  readonly onRetry?: (err: unknown, attempt: number) => void;
}

export const defaultRetry: RetryOptions = { attempts: 5, initialDelayMs: 200 };

/**
 * Runs `step` until it succeeds, retrying transient failures with exponential backoff (capped at 5 s).
 * `step` must resume from where the previous attempt got, which is what makes retrying safe; it calls
 * `progressed()` when it got further, which resets the count, so a long watch survives many drops.
 */
export async function withRetries<T>(options: RetryOptions, step: (attempt: number, progressed: () => void) => Promise<T>): Promise<T> {
  let failures = 0;
  const progressed = () => {
    failures = 0;
  };
  for (let attempt = 1; ; attempt++) {
    try {
      return await step(attempt, progressed);
    } catch (err) {
      failures++;
      if (!isTransient(err) || failures >= options.attempts) throw err;
      options.onRetry?.(err, attempt);
      await sleep(Math.min(options.initialDelayMs * 2 ** (failures - 1), 5_000));
    }
  }
}
