import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { BackpressurePolicy } from "../../gen/mentatlab/v1/common_pb.js";
import { StreamInfoSchema } from "../../gen/mentatlab/v1/stream_pb.js";
import { consumerOf, creditBytes, firstBehind, type FlowControlLimits } from "./flow-control.js";
import type { ConsumerState, StreamRecord } from "./stream-store.js";

const limits: FlowControlLimits = { defaultWindowBytes: 1_000, retainedMaxBytes: 10_000, retainedMaxEvents: 100, detachGraceMs: 5_000 };

function record(published: { bytes: bigint; seq: bigint }, consumers: Record<string, Partial<ConsumerState>>): StreamRecord {
  const info = create(StreamInfoSchema, {
    runId: "r1",
    bytesPublished: published.bytes,
    lastSeq: published.seq,
    consumers: [
      { nodeId: "a", policy: BackpressurePolicy.BLOCK },
      { nodeId: "b", policy: BackpressurePolicy.BLOCK, windowBytes: 50_000n },
      { nodeId: "c", policy: BackpressurePolicy.DROP_OLDEST },
    ],
  });
  const states = new Map(Object.entries(consumers).map(([node, state]) => [node, { seq: 0n, bytes: 0n, attached: 1, detachedAtMs: 0, ...state }]));
  return { info, deadlineMs: 0, lastClientSeq: 0n, consumers: states };
}

const blocking = (r: StreamRecord) => r.info.consumers.filter((c) => c.policy === BackpressurePolicy.BLOCK);

describe("flow control of a stream's declared consumers", () => {
  it("gives the producer the smallest credit among attached consumers, the default window for one that declares none", () => {
    const r = record({ bytes: 1_200n, seq: 20n }, { a: { bytes: 600n, seq: 10n }, b: { bytes: 0n, seq: 1n } });
    // a: 1 000 - 600 behind; b's 50 000 window is capped at half the retained bytes, 5 000 - 1 200.
    expect(creditBytes(r, blocking(r), limits, 0)).toBe(400);
    expect(firstBehind(r, blocking(r), limits, 0)).toBeUndefined();
  });

  it("is out of credit past a window, or half the retained events behind however small they are", () => {
    const overBytes = record({ bytes: 2_000n, seq: 20n }, { a: { bytes: 500n, seq: 19n } });
    expect(creditBytes(overBytes, blocking(overBytes), limits, 0)).toBe(0);
    expect(firstBehind(overBytes, blocking(overBytes), limits, 0)).toMatchObject({ consumer: { nodeId: "a" }, windowBytes: 1_000, lagBytes: 1_500n });
    const overEvents = record({ bytes: 100n, seq: 80n }, { a: { bytes: 90n, seq: 20n } });
    expect(creditBytes(overEvents, blocking(overEvents), limits, 0)).toBe(0);
  });

  it("counts a consumer while attached and for the grace period after it detached, never before it attached", () => {
    const never = record({ bytes: 9_000n, seq: 50n }, {});
    expect(creditBytes(never, blocking(never), limits, 0)).toBe(Infinity);
    const detached = record({ bytes: 9_000n, seq: 50n }, { a: { attached: 0, detachedAtMs: 10_000 } });
    expect(creditBytes(detached, blocking(detached), limits, 14_999)).toBe(0);
    expect(creditBytes(detached, blocking(detached), limits, 15_000)).toBe(Infinity);
  });

  it("recognises a consumer only by the run token of that node of the stream's own run", () => {
    const { info } = record({ bytes: 0n, seq: 1n }, {});
    expect(consumerOf(info, { runId: "r1", nodeId: "a" })?.nodeId).toBe("a");
    expect(consumerOf(info, { runId: "r2", nodeId: "a" })).toBeUndefined();
    expect(consumerOf(info, { runId: "r1", nodeId: "c" })).toBeUndefined();
    expect(consumerOf(info, undefined)).toBeUndefined();
  });
});
