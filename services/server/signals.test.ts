import { afterEach, describe, expect, it } from "vitest";
import { installSignalHandlers } from "./signals.js";

let uninstall: (() => void) | undefined;
afterEach(() => uninstall?.());

describe("installSignalHandlers", () => {
  it("closes gracefully on SIGTERM, then exits 0; a second signal exits 1 at once", async () => {
    const exits: number[] = [];
    let finishClose: () => void = () => {};
    const closing = new Promise<void>((resolve) => (finishClose = resolve));
    let closes = 0;
    uninstall = installSignalHandlers(
      { close: () => Promise.resolve() },
      () => {
        closes++;
        return closing;
      },
      (code) => exits.push(code),
    );
    process.emit("SIGTERM");
    expect(closes).toBe(1);
    expect(exits).toEqual([]);
    process.emit("SIGINT");
    expect(exits).toEqual([1]);
    finishClose();
    await closing;
    await new Promise((resolve) => setImmediate(resolve));
    expect(exits).toEqual([1, 0]);
    expect(closes).toBe(1);
  });

  it("uses the server's own close by default and exits 1 when it fails", async () => {
    const exits: number[] = [];
    uninstall = installSignalHandlers({ close: () => Promise.reject(new Error("stuck")) }, undefined, (code) => exits.push(code));
    process.emit("SIGTERM");
    await new Promise((resolve) => setImmediate(resolve));
    expect(exits).toEqual([1]);
  });
});
