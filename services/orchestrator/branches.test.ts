import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NodeState, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { TestOrchestrator, testAgentManifest, text, watchAll } from "./testing.js";

const pins = "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]";
const manifests = [
  testAgentManifest("org.test.ledger", "ledger.mjs", pins),
  testAgentManifest("org.test.echo", "echo.mjs", "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}, {name: spec_seen, type: json}]"),
  testAgentManifest("org.test.source", "stream-source.mjs", "outputs: [{name: live, type: stream}]", "capabilities: [streaming]"),
  testAgentManifest(
    "org.test.sink",
    "stream-sink.mjs",
    "inputs: [{name: live, type: stream}]\noutputs: [{name: text, type: text}]",
    "capabilities: [streaming]",
  ),
];

let orch: TestOrchestrator;
afterEach(async () => {
  await orch.close();
});

async function start() {
  orch = new TestOrchestrator();
  await orch.register(...manifests);
  return orch.client();
}
const flow = (nodes: string[], edges: string[]) => ({
  source: {
    source: {
      case: "text" as const,
      value: `apiVersion: v1\nkind: Flow\nmeta: {id: branches}\ngraph:\n  nodes: [${nodes.join(", ")}]\n  edges: [${edges.join(", ")}]`,
    },
  },
});
const ledgerNode = (id: string) => `{id: ${id}, agent: org.test.ledger, params: {ledger: ${JSON.stringify(join(orch.dataDir, "ledger"))}}}`;
const starts = () => (existsSync(join(orch.dataDir, "ledger")) ? readFileSync(join(orch.dataDir, "ledger"), "utf8").split("\n").filter(Boolean) : []);

describe("conditional edges", () => {
  it("takes the branch whose condition holds and skips the other with what follows it; the run succeeds", async () => {
    const client = await start();
    const nodes = ["route", "yes", "no", "after"].map(ledgerNode);
    const edges = [
      `{from: route.text, to: yes.text, when: {equals: "x>route"}}`,
      `{from: route.text, to: no.text, when: {pin: text, equals: "elsewhere"}}`,
      "{from: no.text, to: after.text}",
    ];
    const runId = (await client.submitFlow({ ...flow(nodes, edges), inputs: { "route.text": text("x") } })).run?.runId ?? "";
    await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(run?.state).toBe(RunState.SUCCEEDED);
    expect(Object.fromEntries(run?.nodes.map((n) => [n.nodeId, [NodeState[n.state], n.error]]) ?? [])).toEqual({
      route: ["SUCCEEDED", ""],
      yes: ["SUCCEEDED", ""],
      no: ["SKIPPED", 'branch not taken: route.text is "x>route", not "elsewhere"'],
      after: ["SKIPPED", 'upstream node "no" did not run'],
    });
    expect(starts().sort()).toEqual(["route", "yes"]);
    expect(run?.outputs["yes.text"]?.value).toEqual({ case: "text", value: "x>route>yes" });
  });

  it("compares a json output by value, whatever its key order", async () => {
    const client = await start();
    const nodes = [`{id: probe, agent: org.test.echo, params: {mode: fast}}`, ledgerNode("fast")];
    const edges = [`{from: probe.text, to: fast.text, when: {pin: spec_seen, equals: {params: {mode: fast}, agent_id: org.test.echo}}}`];
    const runId = (await client.submitFlow({ ...flow(nodes, edges), inputs: { "probe.text": text("p") } })).run?.runId ?? "";
    await watchAll(client, runId);
    expect((await client.getRun({ runId })).run?.nodes.map((n) => NodeState[n.state])).toEqual(["SUCCEEDED", "SUCCEEDED"]);
  });

  it("reports a condition on a stream, one on a pin the source lacks, and one without a value", async () => {
    const client = await start();
    const nodes = [
      "{id: src, agent: org.test.source}",
      "{id: sink, agent: org.test.sink}",
      `{id: probe, agent: org.test.echo}`,
      ledgerNode("a"),
      ledgerNode("b"),
    ];
    const edges = [
      "{from: src.live, to: sink.live, when: {equals: 1}}",
      "{from: probe.text, to: a.text, when: {pin: nothing, equals: 1}}",
      "{from: probe.text, to: b.text, when: {pin: text}}",
    ];
    const result = await client.validateFlow({ ...flow(nodes, edges), inputs: { "probe.text": text("p") } });
    expect(result.violations.map((v) => [v.fieldPath, v.rule])).toEqual([
      ["graph.edges[2].when.equals", "edge.condition_value"],
      ["graph.edges[0].when", "edge.condition_stream"],
      ["graph.edges[1].when.pin", "edge.condition_pin"],
    ]);
    expect(result.violations[1]?.message).toBe("src.live is a stream, which starts before its node ends: it cannot be conditional");
  });
});
