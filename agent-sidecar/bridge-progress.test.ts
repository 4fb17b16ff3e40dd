import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BridgeProgressRecorder, readBridgeProgress } from "./bridge-progress.js";

const summary = { result: undefined, hasResult: false, errorMessage: "" };

/** A delivery the test acknowledges (or fails) when it chooses. */
function delivery() {
  let acknowledge!: () => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    acknowledge = resolve;
    fail = reject;
  });
  return { promise, acknowledge, fail };
}

describe("BridgeProgressRecorder", () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "bridge-progress-"));
    path = join(dir, "reported.json");
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("records a line only once it and every earlier line are acknowledged", async () => {
    const recorder = new BridgeProgressRecorder(path, undefined);
    const first = delivery();
    recorder.after(first.promise, { offset: 10, summary });
    recorder.after(Promise.resolve(), { offset: 25, summary: { result: { a: 1 }, hasResult: true, errorMessage: "" } });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await readBridgeProgress(path)).toBeUndefined();
    first.acknowledge();
    await recorder.settle();
    expect(await readBridgeProgress(path)).toEqual({ offset: 25, summary: { result: { a: 1 }, hasResult: true, errorMessage: "" }, resultPins: [] });
  });

  it("stops recording at a failed delivery, so a successor reads those lines again", async () => {
    const recorder = new BridgeProgressRecorder(path, undefined);
    recorder.after(Promise.resolve(), { offset: 10, summary });
    const second = delivery();
    recorder.after(second.promise, { offset: 20, summary });
    recorder.after(Promise.resolve(), { offset: 30, summary });
    second.fail(new Error("gateway gone"));
    await recorder.settle();
    expect((await readBridgeProgress(path))?.offset).toBe(10);
  });

  it("keeps the published result pins of a predecessor and adds its own", async () => {
    const recorder = new BridgeProgressRecorder(path, { offset: 40, summary, resultPins: ["a"] });
    expect([...recorder.publishedResultPins]).toEqual(["a"]);
    await recorder.resultPublished("b");
    expect(await readBridgeProgress(path)).toEqual({ offset: 40, summary, resultPins: ["a", "b"] });
  });
});
