import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { merge } from "./merge.js";

async function* timed(name: string, delays: readonly number[]): AsyncGenerator<string> {
  for (const [i, ms] of delays.entries()) {
    await sleep(ms);
    yield `${name}${i}`;
  }
}

describe("merge", () => {
  it("interleaves items in arrival order and ends when every source ends", async () => {
    const seen: string[] = [];
    for await (const item of merge([timed("a", [5, 40]), timed("b", [20, 40])])) seen.push(item);
    expect(seen).toEqual(["a0", "b0", "a1", "b1"]);
  });

  it("stops without waiting for a source that is blocked", async () => {
    const blocked = new Promise<never>(() => undefined);
    async function* stuck(): AsyncGenerator<string> {
      yield await blocked;
    }
    const seen: string[] = [];
    for await (const item of merge([stuck(), timed("a", [1, 1])])) {
      seen.push(item);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(["a0", "a1"]);
  });

  it("passes a source's failure on", async () => {
    async function* failing(): AsyncGenerator<string> {
      await sleep(1);
      throw new Error("boom");
    }
    await expect(async () => {
      for await (const _ of merge([failing(), timed("a", [50])])) void _;
    }).rejects.toThrow("boom");
  });
});
