import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { isRetryable } from "./retryable.js";

const connect = (code: Code) => new ConnectError("x", code);
const nodeError = (code: string) => Object.assign(new Error(code), { code });

describe("isRetryable", () => {
  it("retries a server or path that went away, never a request that was wrong", () => {
    for (const code of [Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.Canceled]) expect(isRetryable(connect(code))).toBe(true);
    const final = [
      Code.InvalidArgument,
      Code.NotFound,
      Code.AlreadyExists,
      Code.PermissionDenied,
      Code.Unauthenticated,
      Code.FailedPrecondition,
      Code.OutOfRange,
      Code.Unimplemented,
      Code.DataLoss,
    ];
    for (const code of final) expect(isRetryable(connect(code), { limits: true, brokenStreams: true })).toBe(false);
  });

  it("retries a connection dropped before any Connect code, but not a local failure", () => {
    for (const code of ["ECONNRESET", "ECONNREFUSED", "EPIPE", "ERR_HTTP2_STREAM_ERROR", "ERR_STREAM_PREMATURE_CLOSE"])
      expect(isRetryable(nodeError(code))).toBe(true);
    expect(isRetryable(new ConnectError("Failed to fetch", Code.Unknown, undefined, undefined, new TypeError("Failed to fetch")))).toBe(true);
    expect(isRetryable(new TypeError("Failed to fetch"))).toBe(true);
    for (const code of ["ENOENT", "EACCES"]) expect(isRetryable(nodeError(code), { limits: true, brokenStreams: true })).toBe(false);
    expect(isRetryable(new Error("plain"), { limits: true, brokenStreams: true })).toBe(false);
  });

  it("retries ResourceExhausted only for backed-off retries that opt into limits", () => {
    expect(isRetryable(connect(Code.ResourceExhausted))).toBe(false);
    expect(isRetryable(connect(Code.ResourceExhausted), { limits: true })).toBe(true);
  });

  it("retries Unknown and Internal only for callers whose calls are repeatable transfers", () => {
    for (const code of [Code.Unknown, Code.Internal]) {
      expect(isRetryable(connect(code), { limits: true })).toBe(false);
      expect(isRetryable(connect(code), { brokenStreams: true })).toBe(true);
    }
  });
});
