import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { FlowNodeSchema, NodeRunSchema, NodeState, ReuseKind, RunSchema, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentManifestSchema, PinSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import type { FlowPlan, PlannedNode } from "./flow-validate.js";
import { nodesToRerun } from "./retry.js";
import { stateTrail, TestOrchestrator, testAgentManifest, text, watchAll } from "./testing.js";

const ledgerAgent = testAgentManifest("org.test.ledger", "ledger.mjs", "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]");

let orch: TestOrchestrator;

async function start() {
  orch = new TestOrchestrator();
  await orch.register(ledgerAgent);
  return orch.client();
}

/** The node ids the ledger agent wrote, one per agent start, in order. */
function starts(): string[] {
  const path = ledger();
  return existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean) : [];
}
const ledger = () => join(orch.dataDir, "ledger");

/** a → b → c, and a → d beside them, every node a ledger agent; `extra` adds params by node (b's by default). */
function diamond(extra: string | Readonly<Record<string, string>>) {
  const more = typeof extra === "string" ? { b: extra } : extra;
  const nodes = ["a", "b", "c", "d"].map((id) => `{id: ${id}, agent: org.test.ledger, params: {ledger: ${JSON.stringify(ledger())}${more[id] ?? ""}}}`);
  const edges = "[{from: a.text, to: b.text}, {from: b.text, to: c.text}, {from: a.text, to: d.text}]";
  return {
    source: { case: "text" as const, value: `apiVersion: v1\nkind: Flow\nmeta: {id: retry}\ngraph:\n  nodes: [${nodes.join(", ")}]\n  edges: ${edges}` },
  };
}

/** Params making a ledger agent fail (`fail_once`) or hang (`hang_once`) the first time, by a marker file named `file`. */
const marker = (param: string, file = param) => `, ${param}: ${JSON.stringify(join(orch.dataDir, file))}`;

async function codeOf(call: Promise<unknown>): Promise<[Code | undefined, string]> {
  try {
    await call;
    return [undefined, ""];
  } catch (err) {
    const e = ConnectError.from(err);
    return [e.code, e.rawMessage];
  }
}

describe("which nodes a retry reruns", () => {
  // src streams into live; live → after; solo stands alone. Only `after` failed.
  const manifest = (outputType: PinType) =>
    create(AgentManifestSchema, { id: "org.test.x", version: "1.0.0", outputs: [create(PinSchema, { name: "out", type: outputType })] });
  const planned = (id: string, outputType: PinType, inputs: [string, string][], downstream: string[]): [string, PlannedNode] => [
    id,
    {
      node: create(FlowNodeSchema, { id }),
      manifest: manifest(outputType),
      inputs: new Map(inputs.map(([pin, node]) => [pin, { kind: "edge", edges: [{ node, pin: "out" }] }])),
      downstream,
    },
  ];
  const plan: FlowPlan = {
    order: ["solo", "src", "live", "after"],
    nodes: new Map([
      planned("solo", PinType.TEXT, [], []),
      planned("src", PinType.STREAM, [], ["live"]),
      planned("live", PinType.TEXT, [["in", "src"]], ["after"]),
      planned("after", PinType.TEXT, [["in", "live"]], []),
    ]),
  };
  const original = (failed: string) =>
    create(RunSchema, {
      runId: "run_1",
      nodes: plan.order.map((nodeId) => create(NodeRunSchema, { nodeId, state: nodeId === failed ? NodeState.FAILED : NodeState.SUCCEEDED })),
    });

  it("reruns the failed node alone when nothing it reads is a stream", () => {
    expect([...nodesToRerun(plan, original("after"), "")].sort()).toEqual(["after"]);
  });

  it("reruns the producer of a stream a rerun node reads, and then everything downstream of it", () => {
    expect([...nodesToRerun(plan, original("after"), "live")].sort()).toEqual(["after", "live", "src"]);
    expect([...nodesToRerun(plan, original("live"), "")].sort()).toEqual(["after", "live", "src"]);
  });
});

describe("RetryRun", () => {
  afterEach(async () => {
    await orch.close();
  });

  it("reruns only the failed node and what depends on it, reusing the rest with a link to the original", async () => {
    const client = await start();
    const { run: first } = await client.submitFlow({ source: diamond(marker("fail_once")), inputs: { "a.text": text("x") } });
    const firstId = first?.runId ?? "";
    await watchAll(client, firstId);
    expect((await client.getRun({ runId: firstId })).run?.state).toBe(RunState.FAILED);
    expect(starts().sort()).toEqual(["a", "b", "d"]);

    const { run: retry } = await client.retryRun({ runId: firstId });
    const retryId = retry?.runId ?? "";
    expect(retryId).not.toBe(firstId);
    expect(retry?.retryOf).toBe(firstId);
    const events = await watchAll(client, retryId);
    // Only b (the failed node) and c (skipped behind it) started agents again.
    expect(starts().slice(3).sort()).toEqual(["b", "c"]);
    expect(stateTrail(events).filter((line) => !line.startsWith("run"))).toEqual([
      "a SUCCEEDED 0",
      "d SUCCEEDED 0",
      "b RUNNING 1",
      "b SUCCEEDED 1",
      "c RUNNING 1",
      "c SUCCEEDED 1",
    ]);
    const reusedEvent = events.find((e) => e.nodeId === "a" && e.event.case === "nodeState");
    const change = reusedEvent?.event.case === "nodeState" ? reusedEvent.event.value : undefined;
    expect(change?.reused).toMatchObject({ kind: ReuseKind.RETRY, runId: firstId, nodeId: "a" });
    expect(change?.reason).toBe(`reused from run ${firstId} node a (retry)`);
    // Watchers get the kept outputs as events, before the node's SUCCEEDED.
    const kept = events.find((e) => e.nodeId === "a" && e.event.case === "agent");
    expect(kept?.event.case === "agent" && kept.event.value.event.case === "output" && kept.event.value.event.value.value?.value).toEqual({
      case: "text",
      value: "x>a",
    });
    expect(kept?.seq).toBeLessThan(reusedEvent?.seq ?? 0n);

    const done = (await client.getRun({ runId: retryId })).run;
    expect(done?.state).toBe(RunState.SUCCEEDED);
    expect(done?.outputs["c.text"]?.value).toEqual({ case: "text", value: "x>a>b>c" });
    expect(done?.outputs["d.text"]?.value).toEqual({ case: "text", value: "x>a>d" });
    expect(done?.nodes.map((n) => [n.nodeId, n.reused?.kind ?? ReuseKind.UNSPECIFIED])).toEqual([
      ["a", ReuseKind.RETRY],
      ["b", ReuseKind.UNSPECIFIED],
      ["c", ReuseKind.UNSPECIFIED],
      ["d", ReuseKind.RETRY],
    ]);

    // A succeeded run has nothing to retry.
    const [code, message] = await codeOf(client.retryRun({ runId: retryId }));
    expect(code).toBe(Code.FailedPrecondition);
    expect(message).toBe(`run ${retryId} is succeeded: only a failed or cancelled run can be retried (submit the flow again to run it anew)`);
  });

  it("with from_node also reruns that node and its downstream, and answers a repeated request_id with the same run", async () => {
    const client = await start();
    const firstId = (await client.submitFlow({ source: diamond(marker("fail_once")), inputs: { "a.text": text("x") } })).run?.runId ?? "";
    await watchAll(client, firstId);
    const retry = (await client.retryRun({ runId: firstId, fromNode: "d", requestId: "again-1" })).run;
    expect((await client.retryRun({ runId: firstId, fromNode: "d", requestId: "again-1" })).run?.runId).toBe(retry?.runId);
    await watchAll(client, retry?.runId ?? "");
    expect(starts().slice(3).sort()).toEqual(["b", "c", "d"]);
    expect((await client.getRun({ runId: retry?.runId ?? "" })).run?.nodes.find((n) => n.nodeId === "a")?.reused?.runId).toBe(firstId);
  });

  it("links the run whose agent produced the outputs when a retry itself failed and is retried", async () => {
    const client = await start();
    // b fails in the first run; c, skipped there, fails in the retry.
    const flow = diamond({ b: marker("fail_once", "b-failed"), c: marker("fail_once", "c-failed") });
    const first = (await client.submitFlow({ source: flow, inputs: { "a.text": text("x") } })).run?.runId ?? "";
    await watchAll(client, first);
    const second = (await client.retryRun({ runId: first })).run?.runId ?? "";
    await watchAll(client, second);
    expect((await client.getRun({ runId: second })).run?.state).toBe(RunState.FAILED);
    const third = (await client.retryRun({ runId: second })).run?.runId ?? "";
    await watchAll(client, third);
    const run = (await client.getRun({ runId: third })).run;
    expect(run?.state).toBe(RunState.SUCCEEDED);
    expect(Object.fromEntries(run?.nodes.map((n) => [n.nodeId, n.reused?.runId ?? ""]) ?? [])).toEqual({ a: first, b: second, c: "", d: first });
    // a, b, d; then b, c; then c alone.
    expect(starts().slice(5)).toEqual(["c"]);
  });

  it("retries a cancelled run: the cancelled node and its downstream run, the rest is kept", async () => {
    const client = await start();
    const runId = (await client.submitFlow({ source: diamond(marker("hang_once")), inputs: { "a.text": text("x") } })).run?.runId ?? "";
    // b's agent itself has started (it wrote its marker: a RUNNING state comes before the process does) and d is done.
    for (;;) {
      const run = (await client.getRun({ runId })).run;
      if (existsSync(join(orch.dataDir, "hang_once")) && run?.nodes.find((n) => n.nodeId === "d")?.state === NodeState.SUCCEEDED) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const [running] = await codeOf(client.retryRun({ runId }));
    expect(running).toBe(Code.FailedPrecondition);
    await client.cancelRun({ runId });
    const retry = (await client.retryRun({ runId })).run?.runId ?? "";
    await watchAll(client, retry);
    expect(starts().slice(3).sort()).toEqual(["b", "c"]);
    expect((await client.getRun({ runId: retry })).run?.outputs["c.text"]?.value).toEqual({ case: "text", value: "x>a>b>c" });
  });

  it("refuses an unknown run, another workspace's run and a from_node the run does not have, before starting anything", async () => {
    const client = await start();
    const runId = (await client.submitFlow({ source: diamond(marker("fail_once")), inputs: { "a.text": text("x") } })).run?.runId ?? "";
    await watchAll(client, runId);
    const before = starts().length;
    expect(await codeOf(client.retryRun({ runId: "run_missing" }))).toEqual([Code.NotFound, "run run_missing not found"]);
    expect((await codeOf(orch.client({ workspace: "elsewhere" }).retryRun({ runId })))[0]).toBe(Code.NotFound);
    expect(await codeOf(client.retryRun({ runId, fromNode: "zz" }))).toEqual([
      Code.InvalidArgument,
      `from_node "zz" is not a node of run ${runId}; use one of: a, b, c, d`,
    ]);
    expect(starts().length).toBe(before);
  });
});
