import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { NodeState, RunEventSchema, RunSchema, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { applyRunEvent, formatDuration, initialRunView } from "./run-model.js";

const t0 = Date.UTC(2026, 0, 1);
const run = create(RunSchema, {
  runId: "run_1",
  createdAt: timestampFromMs(t0),
  flow: {
    graph: {
      nodes: [
        { id: "a", agent: "org.example.a" },
        { id: "b", agent: "org.example.b" },
      ],
    },
  },
});

function event(seq: number, atMs: number, init: { nodeId?: string; event: MessageInitShape<typeof RunEventSchema>["event"] }) {
  return create(RunEventSchema, { seq: BigInt(seq), time: timestampFromMs(t0 + atMs), runId: "run_1", ...init });
}
const nodeState = (seq: number, atMs: number, nodeId: string, state: NodeState, attempt: number, reason = "") =>
  event(seq, atMs, { nodeId, event: { case: "nodeState", value: { nodeId, state, attempt, reason } } });
const output = (seq: number, atMs: number, nodeId: string, pin: string, text: string) =>
  event(seq, atMs, { nodeId, event: { case: "agent", value: { event: { case: "output", value: { pin, value: { value: { case: "text", value: text } } } } } } });

describe("run view", () => {
  it("starts with every node of the flow pending", () => {
    const view = initialRunView(run);
    expect(Array.from(view.nodes.values(), (n) => [n.nodeId, n.agent, n.state])).toEqual([
      ["a", "org.example.a", NodeState.PENDING],
      ["b", "org.example.b", NodeState.PENDING],
    ]);
  });

  it("keeps one entry per attempt, and a retry's outputs replace the failed attempt's", () => {
    const view = initialRunView(run);
    for (const e of [
      event(1, 0, { event: { case: "runState", value: { state: RunState.RUNNING } } }),
      nodeState(2, 100, "a", NodeState.RUNNING, 1),
      output(3, 200, "a", "text", "first try"),
      event(4, 250, { nodeId: "a", event: { case: "agent", value: { event: { case: "log", value: { message: "flaky" } } } } }),
      nodeState(5, 300, "a", NodeState.RETRYING, 1, "exit code 3"),
      nodeState(6, 1300, "a", NodeState.RUNNING, 2),
      event(7, 1400, { nodeId: "a", event: { case: "agent", value: { event: { case: "progress", value: { percent: 40, message: "working" } } } } }),
      output(8, 1500, "a", "text", "second try"),
      nodeState(9, 1600, "a", NodeState.SUCCEEDED, 2),
      event(10, 1700, { event: { case: "runState", value: { state: RunState.SUCCEEDED } } }),
    ]) {
      applyRunEvent(view, e);
    }
    const a = view.nodes.get("a");
    expect(a?.attempts.map((x) => [x.attempt, x.state, x.startedAt.getTime() - t0, (x.endedAt?.getTime() ?? 0) - t0, x.reason])).toEqual([
      [1, NodeState.RETRYING, 100, 300, "exit code 3"],
      [2, NodeState.SUCCEEDED, 1300, 1600, ""],
    ]);
    expect(a?.state).toBe(NodeState.SUCCEEDED);
    expect(a?.progress).toBe(100);
    expect(a?.log).toEqual(["flaky"]);
    expect(Array.from(a?.outputs ?? [], ([pin, v]) => [pin, v.value.value])).toEqual([["text", "second try"]]);
    expect(view.state).toBe(RunState.SUCCEEDED);
    expect(view.endedAt?.getTime()).toBe(t0 + 1700);
    expect(view.nodes.get("b")?.attempts).toEqual([]);
  });

  it("formats durations in seconds, minutes and hours", () => {
    const start = new Date(t0);
    expect(formatDuration(start, new Date(t0 + 1234))).toBe("1.2 s");
    expect(formatDuration(start, new Date(t0 + 184_000))).toBe("3 min 4 s");
    expect(formatDuration(start, new Date(t0 + 3_900_000))).toBe("1 h 5 min");
    expect(formatDuration(start, undefined, new Date(t0 + 500))).toBe("0.5 s");
  });
});

describe("mapped nodes", () => {
  const mapped = create(RunSchema, {
    runId: "run_1",
    createdAt: timestampFromMs(t0),
    flow: { graph: { nodes: [{ id: "m", agent: "org.example.m", map: { pin: "text" } }] } },
  });
  const item = (seq: number, index: number, state: NodeState, counts: { succeeded: number; failed: number }, reason = "") =>
    event(seq, seq, { nodeId: "m", event: { case: "mapItem", value: { nodeId: "m", index, state, attempt: seq, reason, total: 4, ...counts } } });

  it("counts items as they end, lists the failed ones, runs as one attempt, and keeps items' outputs out of the node's", () => {
    const view = initialRunView(mapped);
    const events = [
      nodeState(1, 1, "m", NodeState.RUNNING, 0, "mapping over 4 items of text, at most 2 at once"),
      item(2, 0, NodeState.RUNNING, { succeeded: 0, failed: 0 }),
      create(RunEventSchema, {
        seq: 3n,
        runId: "run_1",
        nodeId: "m",
        itemIndex: 0,
        event: { case: "agent", value: { event: { case: "output", value: { pin: "text", value: { value: { case: "text", value: "a!" } } } } } },
      }),
      item(4, 0, NodeState.SUCCEEDED, { succeeded: 1, failed: 0 }),
      item(5, 2, NodeState.FAILED, { succeeded: 1, failed: 1 }, "agent exited with code 1"),
    ];
    for (const e of events) applyRunEvent(view, e);
    const node = view.nodes.get("m");
    expect(node?.progress).toBe(50);
    expect(node?.progressMessage).toBe("map 2/4, 1 failed (items 2)");
    expect(node?.outputs.size).toBe(0);
    expect([...(node?.map?.failures ?? [])]).toEqual([[2, "agent exited with code 1"]]);
    applyRunEvent(view, nodeState(6, 6, "m", NodeState.FAILED, 7, "item 2 of 4 failed"));
    expect(node?.attempts.map((a) => [a.attempt, NodeState[a.state]])).toEqual([[1, "FAILED"]]);
  });
});
