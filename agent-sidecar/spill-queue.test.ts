import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SpillQueue } from "./spill-queue.js";

describe("SpillQueue", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "spill-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

  it("numbers payloads from 1 and returns them until acknowledged", async () => {
    const queue = new SpillQueue({ memoryBytes: 1024, capacityBytes: 4096, spillPath: join(dir, "q") });
    expect(await queue.push(bytes(10, 1))).toBe(1n);
    expect(await queue.push(bytes(10, 2))).toBe(2n);
    expect(await queue.read(2n)).toEqual(bytes(10, 2));
    queue.ack(1n);
    expect(queue.ackedSeq).toBe(1n);
    await expect(queue.read(1n)).rejects.toThrow(/not buffered/);
    expect(queue.bufferedBytes).toBe(10);
  });

  it("spills past the memory bound to disk and reads the bytes back intact", async () => {
    const spillPath = join(dir, "q");
    const queue = new SpillQueue({ memoryBytes: 100, capacityBytes: 10_000, spillPath });
    for (let i = 1; i <= 10; i++) await queue.push(bytes(40, i));
    expect(queue.spilledBytes).toBe(400 - 80);
    expect((await stat(spillPath)).size).toBe(320);
    for (let i = 1; i <= 10; i++) expect(await queue.read(BigInt(i))).toEqual(bytes(40, i));
    queue.ack(10n);
    expect(queue.bufferedBytes).toBe(0);
    // With nothing on disk needed, the next spilled payload starts the file over.
    await queue.push(bytes(100, 11));
    await queue.push(bytes(40, 12));
    expect((await stat(spillPath)).size).toBe(40);
    expect(await queue.read(12n)).toEqual(bytes(40, 12));
    await queue.dispose();
    await expect(stat(spillPath)).rejects.toThrow();
  });

  it("keeps a copy, so the writer may reuse its buffer", async () => {
    const queue = new SpillQueue({ memoryBytes: 100, capacityBytes: 1000, spillPath: join(dir, "q") });
    const reused = bytes(4, 7);
    await queue.push(reused);
    reused.fill(0);
    expect(await queue.read(1n)).toEqual(bytes(4, 7));
  });

  it("makes writers wait at capacity until acknowledgements free room", async () => {
    const queue = new SpillQueue({ memoryBytes: 0, capacityBytes: 100, spillPath: join(dir, "q") });
    await queue.push(bytes(60, 1));
    let third = false;
    const pending = queue.push(bytes(60, 2)).then((seq) => {
      third = true;
      return seq;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(third).toBe(false);
    queue.ack(1n);
    expect(await pending).toBe(2n);
    expect(await queue.read(2n)).toEqual(bytes(60, 2));
    await queue.dispose();
  });

  it("rejects pushes after close and waiting writers after fail", async () => {
    const queue = new SpillQueue({ memoryBytes: 0, capacityBytes: 10, spillPath: join(dir, "q") });
    await queue.push(bytes(10, 1));
    const blocked = queue.push(bytes(10, 2));
    queue.fail(new Error("gateway gone"));
    await expect(blocked).rejects.toThrow("gateway gone");
    await expect(queue.push(bytes(1, 1))).rejects.toThrow(/closed/);
    await expect(queue.drained()).rejects.toThrow("gateway gone");
    await queue.dispose();
  });

  it("waitForMore wakes on a push and on abort", async () => {
    const queue = new SpillQueue({ memoryBytes: 100, capacityBytes: 100, spillPath: join(dir, "q") });
    const woken = queue.waitForMore(0n, new AbortController().signal);
    await queue.push(bytes(1, 1));
    await woken;
    const abort = new AbortController();
    const aborted = queue.waitForMore(1n, abort.signal);
    abort.abort();
    await aborted;
  });
});
