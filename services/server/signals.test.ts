import { afterEach, describe, expect, it } from "vitest";
import { installSignalHandlers } from "./signals.js";

let uninstall: (() => void) | undefined;
afterEach(() => uninstall?.());

/**
 * Delivers a signal to the handler just installed only: emitting on `process` would also reach
 * the test runner's own listeners.
 */
function installAndGetSender(install: () => () => void): (signal: NodeJS.Signals) => void {
  const before = new Set(process.listeners("SIGTERM"));
  uninstall = install();
  const added = process.listeners("SIGTERM").filter((listener) => !before.has(listener));
  expect(added).toHaveLength(1);
  expect(process.listeners("SIGINT")).toContain(added[0]);
  return (signal) => (added[0] as (signal: NodeJS.Signals) => void)(signal);
}

describe("installSignalHandlers", () => {
  it("closes gracefully on SIGTERM, then exits 0; a second signal exits 1 at once, the same one relayed twice does not", async () => {
    const exits: number[] = [];
    let clock = 1_000;
    let finishClose: () => void = () => {};
    const closing = new Promise<void>((resolve) => (finishClose = resolve));
    let closes = 0;
    const send = installAndGetSender(() =>
      installSignalHandlers(
        { close: () => Promise.resolve() },
        () => {
          closes++;
          return closing;
        },
        (code) => exits.push(code),
        () => clock,
      ),
    );
    send("SIGTERM");
    expect(closes).toBe(1);
    expect(exits).toEqual([]);
    clock += 50;
    send("SIGTERM");
    expect(exits).toEqual([]);
    clock += 1_000;
    send("SIGINT");
    expect(exits).toEqual([1]);
    finishClose();
    await closing;
    await new Promise((resolve) => setImmediate(resolve));
    expect(exits).toEqual([1, 0]);
    expect(closes).toBe(1);
  });

  it("uses the server's own close by default and exits 1 when it fails", async () => {
    const exits: number[] = [];
    const send = installAndGetSender(() => installSignalHandlers({ close: () => Promise.reject(new Error("stuck")) }, undefined, (code) => exits.push(code)));
    send("SIGTERM");
    await new Promise((resolve) => setImmediate(resolve));
    expect(exits).toEqual([1]);
  });

  it("uninstalls its listeners", () => {
    const before = process.listeners("SIGTERM").length;
    installSignalHandlers({ close: () => Promise.resolve() }, undefined, () => {})();
    expect(process.listeners("SIGTERM")).toHaveLength(before);
  });
});
