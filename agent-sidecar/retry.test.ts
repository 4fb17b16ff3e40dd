import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { backoffDelay, isTransient, withRetries } from "./retry.js";

describe("retry", () => {
  it("treats network failures as transient and caller mistakes as final", () => {
    for (const code of [Code.Unavailable, Code.Canceled, Code.DeadlineExceeded, Code.Internal]) expect(isTransient(new ConnectError("x", code))).toBe(true);
    for (const code of [Code.NotFound, Code.InvalidArgument, Code.PermissionDenied, Code.DataLoss, Code.Unauthenticated])
      expect(isTransient(new ConnectError("x", code))).toBe(false);
    expect(isTransient(Object.assign(new Error("reset"), { code: "ECONNRESET" }))).toBe(true);
    expect(isTransient(new Error("plain"))).toBe(false);
  });

  it("backs off exponentially up to the cap, with jitter in the upper half", () => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const base = Math.min(1000, 100 * 2 ** (attempt - 1));
      const delay = backoffDelay({ initialMs: 100, maxMs: 1000 }, attempt);
      expect(delay).toBeGreaterThanOrEqual(base / 2);
      expect(delay).toBeLessThanOrEqual(base);
    }
  });

  it("retries transient failures up to the attempt limit, and stops at once on others or on abort", async () => {
    let calls = 0;
    await expect(
      withRetries(3, { initialMs: 1, maxMs: 2 }, undefined, async () => {
        calls++;
        throw new ConnectError("down", Code.Unavailable);
      }),
    ).rejects.toThrow("down");
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      withRetries(3, { initialMs: 1, maxMs: 2 }, undefined, async () => {
        calls++;
        throw new ConnectError("gone", Code.NotFound);
      }),
    ).rejects.toThrow("gone");
    expect(calls).toBe(1);
    const abort = new AbortController();
    abort.abort();
    calls = 0;
    await expect(
      withRetries(3, { initialMs: 1, maxMs: 2 }, abort.signal, async () => {
        calls++;
        throw new ConnectError("down", Code.Unavailable);
      }),
    ).rejects.toThrow("down");
    expect(calls).toBe(1);
    expect(
      await withRetries(3, { initialMs: 1, maxMs: 2 }, undefined, async (attempt) =>
        attempt < 2 ? Promise.reject(new ConnectError("blip", Code.Unavailable)) : "ok",
      ),
    ).toBe("ok");
  });
});
