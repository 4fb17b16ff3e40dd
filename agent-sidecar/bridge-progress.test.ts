import { mkdtemp, rm, writeFile } from "node:fs/promises";
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

  it("records a fresh reporter id before anything is reported, and a successor numbers events under it", async () => {
    const recorder = await BridgeProgressRecorder.open(path);
    const recorded = await readBridgeProgress(path);
    expect(recorded).toMatchObject({ offset: 0, eventSeq: 0, resultPins: [] });
    expect(recorded?.reporterId).toMatch(/^[0-9a-f-]{36}$/);
    recorder.after(Promise.resolve(), { offset: 12, summary, eventSeq: 3 });
    await recorder.settle();
    const successor = (await BridgeProgressRecorder.open(path)).resumeAt;
    expect(successor.offset).toBe(12);
    expect(successor.sequence.reporterId).toBe(recorded?.reporterId);
    expect(successor.sequence.next()).toBe(4n);
  });

  it("records a line only once it and every earlier line are acknowledged", async () => {
    const recorder = await BridgeProgressRecorder.open(path);
    const first = delivery();
    recorder.after(first.promise, { offset: 10, summary, eventSeq: 1 });
    recorder.after(Promise.resolve(), { offset: 25, summary: { result: { a: 1 }, hasResult: true, errorMessage: "" }, eventSeq: 2 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await readBridgeProgress(path)).toMatchObject({ offset: 0, eventSeq: 0 });
    first.acknowledge();
    await recorder.settle();
    expect(await readBridgeProgress(path)).toMatchObject({
      offset: 25,
      summary: { result: { a: 1 }, hasResult: true, errorMessage: "" },
      resultPins: [],
      eventSeq: 2,
    });
  });

  it("stops recording at a failed delivery, so a successor reads those lines again", async () => {
    const recorder = await BridgeProgressRecorder.open(path);
    recorder.after(Promise.resolve(), { offset: 10, summary, eventSeq: 1 });
    const second = delivery();
    recorder.after(second.promise, { offset: 20, summary, eventSeq: 2 });
    recorder.after(Promise.resolve(), { offset: 30, summary, eventSeq: 3 });
    second.fail(new Error("gateway gone"));
    await recorder.settle();
    expect(await readBridgeProgress(path)).toMatchObject({ offset: 10, eventSeq: 1 });
  });

  it("keeps the published result pins of a predecessor and adds its own", async () => {
    await writeFile(path, JSON.stringify({ offset: 40, ...summary, resultPins: ["a"], reporterId: "r-1", eventSeq: 5 }));
    const recorder = await BridgeProgressRecorder.open(path);
    expect([...recorder.publishedResultPins]).toEqual(["a"]);
    await recorder.resultPublished("b");
    expect(await readBridgeProgress(path)).toEqual({ offset: 40, summary, resultPins: ["a", "b"], reporterId: "r-1", eventSeq: 5 });
  });
});
