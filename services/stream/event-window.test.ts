import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { type StreamEvent, StreamEventSchema } from "../../gen/mentatlab/v1/stream_pb.js";
import { EventWindow } from "./event-window.js";

function event(seq: number, bytes = 1, timeMs = 0): StreamEvent {
  return create(StreamEventSchema, {
    seq: BigInt(seq),
    time: timestampFromMs(timeMs),
    event: { case: "data", value: { data: new Uint8Array(bytes) } },
  });
}

const seqs = (window: EventWindow): number[] => {
  const out: number[] = [];
  for (let seq = window.first ?? 0; seq < (window.next ?? 0); seq++) out.push(Number(window.at(seq)?.seq));
  return out;
};

describe("EventWindow", () => {
  it("holds contiguous events, ignores ones it already has and restarts after a gap", () => {
    const window = new EventWindow({ maxEvents: 100, maxBytes: 1_000 });
    expect(window.first).toBeUndefined();
    for (const seq of [1, 2, 3]) window.push(event(seq));
    window.push(event(2));
    expect(seqs(window)).toEqual([1, 2, 3]);
    window.push(event(7));
    expect(window.first).toBe(7);
    expect(seqs(window)).toEqual([7]);
    expect(window.at(3)).toBeUndefined();
  });

  it("drops the oldest events past its count and byte bounds, never the newest", () => {
    const window = new EventWindow({ maxEvents: 3, maxBytes: 10 });
    for (let seq = 1; seq <= 5; seq++) window.push(event(seq));
    expect(seqs(window)).toEqual([3, 4, 5]);
    window.push(event(6, 8));
    expect(seqs(window)).toEqual([4, 5, 6]);
    window.push(event(7, 50));
    expect(seqs(window)).toEqual([7]);
  });

  it("trims by age but keeps the newest, and wakes every waiter on a push", async () => {
    const window = new EventWindow({ maxEvents: 100, maxBytes: 1_000 });
    window.push(event(1, 1, 0));
    window.push(event(2, 1, 10));
    window.trimOlderThan(5);
    expect(seqs(window)).toEqual([2]);
    window.trimOlderThan(1_000);
    expect(seqs(window)).toEqual([2]);
    const waiters = [window.changed(), window.changed()];
    window.push(event(3));
    await expect(Promise.all(waiters)).resolves.toEqual([undefined, undefined]);
  });

  it("wakes readers once per turn of the event loop, after the turn that pushed", async () => {
    const window = new EventWindow({ maxEvents: 100, maxBytes: 1_000 });
    let wakes = 0;
    void window.changed().then(() => wakes++);
    for (let seq = 1; seq <= 5; seq++) window.push(event(seq));
    for (let hop = 0; hop < 20; hop++) await Promise.resolve();
    expect(wakes).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(wakes).toBe(1);
  });

  it("counts a reader behind only by bytes it has had a whole wake-up to read", async () => {
    const window = new EventWindow({ maxEvents: 100, maxBytes: 1_000 });
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    window.push(event(1, 10));
    window.push(event(2, 20));
    await turn();
    // A burst just announced is not lag yet, however large.
    expect(window.bytesBehind(1)).toBe(0);
    window.push(event(3, 40));
    await turn();
    expect(window.bytesBehind(1)).toBe(30);
    expect(window.bytesBehind(2)).toBe(20);
    expect(window.bytesBehind(3)).toBe(0);
    await turn();
    expect(window.bytesBehind(3)).toBe(0);
    window.push(event(4, 1));
    await turn();
    expect(window.bytesBehind(3)).toBe(40);
    expect(window.bytesBehind(99)).toBe(0);
  });
});
