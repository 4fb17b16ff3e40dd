import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import { storeUnavailableError } from "./store-unavailable.js";

afterEach(() => vi.restoreAllMocks());

describe("storeUnavailableError", () => {
  it("answers UNAVAILABLE naming the store and a safe reason, keeping the driver's error as cause and out of the message", () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const cause = new Error("connect ENOENT /run/secret/redis.sock");
    const err = storeUnavailableError("the quota store", "Redis did not answer", cause);
    expect([err.code, err.rawMessage]).toEqual([Code.Unavailable, "the quota store is unavailable (Redis did not answer); retry shortly"]);
    expect(err.cause).toBe(cause);
    expect(logged).toHaveBeenCalledWith("the quota store failed (Redis did not answer):", cause);
  });

  it("passes a ConnectError unchanged: the service already coded it", () => {
    const refusal = new ConnectError("over quota", Code.ResourceExhausted);
    expect(storeUnavailableError("the quota store", "Redis did not answer", refusal)).toBe(refusal);
  });
});
