import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { BackoffKind, RetryPolicySchema } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { mayRetry, retryDelayMs } from "./backoff.js";
import { durationFromSeconds } from "./flow-parse.js";

const policy = (backoff: BackoffKind, seconds?: number, maxAttempts = 5) =>
  create(RetryPolicySchema, { backoff, maxAttempts, ...(seconds === undefined ? {} : { initialDelay: durationFromSeconds(seconds) }) });

describe("retry backoff", () => {
  it.each([
    [BackoffKind.FIXED, [2000, 2000, 2000]],
    [BackoffKind.LINEAR, [2000, 4000, 6000]],
    [BackoffKind.EXPONENTIAL, [2000, 4000, 8000]],
    [BackoffKind.UNSPECIFIED, [2000, 4000, 8000]],
  ])("kind %s grows as designed", (kind, delays) => {
    expect([1, 2, 3].map((attempt) => retryDelayMs(policy(kind, 2), attempt))).toEqual(delays);
  });

  it("caps every delay at 60 s", () => {
    expect(retryDelayMs(policy(BackoffKind.EXPONENTIAL, 10), 10)).toBe(60_000);
    expect(retryDelayMs(policy(BackoffKind.FIXED, 600), 1)).toBe(60_000);
  });

  it("defaults to a 1 s initial delay", () => {
    expect(retryDelayMs(policy(BackoffKind.LINEAR), 3)).toBe(3000);
  });

  it("allows attempts up to max_attempts, and none without a policy", () => {
    expect([1, 2, 3].map((a) => mayRetry(policy(BackoffKind.FIXED, 1, 3), a))).toEqual([true, true, false]);
    expect(mayRetry(undefined, 1)).toBe(false);
  });
});
