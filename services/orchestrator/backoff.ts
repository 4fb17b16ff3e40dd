import { BackoffKind, type RetryPolicy } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { durationToMs } from "./flow-parse.js";

/** The original project's cap on any retry delay. */
export const maxRetryDelayMs = 60_000;
const defaultInitialDelayMs = 1000;

/** Delay before retrying after `failedAttempt` (1-based) failed transiently. */
export function retryDelayMs(policy: RetryPolicy | undefined, failedAttempt: number): number {
  const initial = durationToMs(policy?.initialDelay) ?? defaultInitialDelayMs;
  const delay =
    policy?.backoff === BackoffKind.FIXED ? initial : policy?.backoff === BackoffKind.LINEAR ? initial * failedAttempt : initial * 2 ** (failedAttempt - 1);
  return Math.min(delay, maxRetryDelayMs);
}

/** Whether a node whose `failedAttempt` failed transiently gets another attempt. */
export function mayRetry(policy: RetryPolicy | undefined, failedAttempt: number): boolean {
  return failedAttempt < (policy?.maxAttempts ?? 1);
}
