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

describe("CEL conditions", () => {
  it("takes the edge whose expression over the source's outputs is true and skips the other", async () => {
    const client = await start();
    const nodes = [`{id: probe, agent: org.test.echo, params: {kind: photo}}`, ledgerNode("photo"), ledgerNode("doc")];
    const edges = [
      `{from: probe.text, to: photo.text, when: {expr: "outputs.spec_seen.params.kind == 'photo' && value.endsWith('p')"}}`,
      `{from: probe.text, to: doc.text, when: "outputs.spec_seen.params.kind == 'document'"}`,
    ];
    const runId = (await client.submitFlow({ ...flow(nodes, edges), inputs: { "probe.text": text("p") } })).run?.runId ?? "";
    await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(run?.state).toBe(RunState.SUCCEEDED);
    expect(Object.fromEntries(run?.nodes.map((n) => [n.nodeId, [NodeState[n.state], n.error]]) ?? [])).toEqual({
      probe: ["SUCCEEDED", ""],
      photo: ["SUCCEEDED", ""],
      doc: ["SKIPPED", "branch not taken: `outputs.spec_seen.params.kind == 'document'` is false for probe"],
    });
    expect(starts()).toEqual(["photo"]);
  });

  it("refuses expressions that do not compile, read unknown names or pins, or nest too deep, each at its edge's path", async () => {
    const client = await start();
    const nodes = [`{id: probe, agent: org.test.echo}`, ...["a", "b", "c", "d", "e"].map(ledgerNode)];
    const edges = [
      `{from: probe.text, to: a.text, when: {expr: "outputs.text =="}}`,
      `{from: probe.text, to: b.text, when: {expr: "nope == 1"}}`,
      `{from: probe.text, to: c.text, when: {expr: "outputs.missing == 'x'"}}`,
      `{from: probe.text, to: d.text, when: {expr: "[[[1]]].all(x, x.all(y, y.all(z, z > 0)))"}}`,
      `{from: probe.text, to: e.text, when: {expr: "'photo'"}}`,
    ];
    const result = await client.validateFlow({ ...flow(nodes, edges), inputs: { "probe.text": text("p") } });
    expect(result.violations.map((v) => [v.fieldPath, v.rule])).toEqual(edges.map((_, i) => [`graph.edges[${i}].when.expr`, "edge.condition_expr"]));
    expect(result.violations.map((v) => v.message.split(":")[0])).toEqual([
      "the expression does not parse",
      'unknown name "nope"',
      "outputs.missing",
      "comprehensions (all, exists, map, filter) nest more than 2 deep",
      "the expression is a constant that is not true or false",
    ]);
  });

  it("fails the destination node, loudly, when an expression errs at run time", async () => {
    const client = await start();
    const edges = [`{from: probe.text, to: a.text, when: {expr: "outputs.spec_seen.params.size > 1"}}`];
    const runId = (await client.submitFlow({ ...flow([`{id: probe, agent: org.test.echo}`, ledgerNode("a")], edges), inputs: { "probe.text": text("p") } })).run
      ?.runId;
    await watchAll(client, runId ?? "");
    const run = (await client.getRun({ runId: runId ?? "" })).run;
    expect(run?.state).toBe(RunState.FAILED);
    expect(run?.nodes[1]?.error).toMatch(/^condition `outputs.spec_seen.params.size > 1` on probe's outputs failed: /);
  });
});

describe("either-branch joins", () => {
  const diamond = [
    "{from: route.text, to: photo.text, when: {expr: \"value.startsWith('photo')\"}}",
    "{from: route.text, to: doc.text, when: {expr: \"value.startsWith('doc')\"}}",
    "{from: photo.text, to: publish.text}",
    "{from: doc.text, to: publish.text}",
  ];
  const nodes = () => [...["route", "photo", "doc"].map(ledgerNode), ledgerNode("publish").replace("{id: publish,", "{id: publish, join: any,")];

  it("runs a node joining any branch after the one branch taken, with that branch's value", async () => {
    const client = await start();
    const runId = (await client.submitFlow({ ...flow(nodes(), diamond), inputs: { "route.text": text("doc-1") } })).run?.runId ?? "";
    await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(run?.state).toBe(RunState.SUCCEEDED);
    expect(run?.nodes.map((n) => [n.nodeId, NodeState[n.state]])).toEqual([
      ["route", "SUCCEEDED"],
      ["doc", "SUCCEEDED"],
      ["photo", "SKIPPED"],
      ["publish", "SUCCEEDED"],
    ]);
    expect(run?.outputs["publish.text"]?.value).toEqual({ case: "text", value: "doc-1>route>doc>publish" });
    expect(starts().sort()).toEqual(["doc", "publish", "route"]);
  });

  it("skips the join when no branch was taken, and refuses two edges into one pin without join: any", async () => {
    const client = await start();
    const runId = (await client.submitFlow({ ...flow(nodes(), diamond), inputs: { "route.text": text("video") } })).run?.runId ?? "";
    await watchAll(client, runId);
    const publish = (await client.getRun({ runId })).run?.nodes.find((n) => n.nodeId === "publish");
    expect(publish?.state).toBe(NodeState.SKIPPED);
    expect(publish?.error).toBe('no branch into it was taken (upstream node "photo" did not run; upstream node "doc" did not run)');

    const plain = nodes().map((n) => n.replace(" join: any,", ""));
    const result = await client.validateFlow({ ...flow(plain, diamond), inputs: { "route.text": text("x") } });
    expect(result.violations.map((v) => [v.fieldPath, v.rule, v.hint])).toEqual([
      ["graph.edges[3].to", "edge.input_bound_once", "feed each input from exactly one output, or set `join: any` on the node to take whichever branch ran"],
    ]);
  });
});
