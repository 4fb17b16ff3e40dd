import { create } from "@bufbuild/protobuf";
import { beforeAll, describe, expect, it } from "vitest";
import { BackpressurePolicy, PinValueSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { BackoffKind } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentCatalog } from "../registry/agent-catalog.js";
import { parseManifestText } from "../registry/manifest-parse.js";
import { validateManifest } from "../registry/manifest-validate.js";
import { MemoryAgentStore } from "../registry/memory-agent-store.js";
import { parseFlowText } from "./flow-parse.js";
import { checkFlow } from "./flow-validate.js";
import { streamConsumers } from "./stream-opener.js";

const agents = [
  `{id: org.example.text, version: 1.0.0, command: [x], inputs: [{name: prompt, type: text, required: true}, {name: style, type: json}], outputs: [{name: text, type: text}, {name: data, type: json}]}`,
  `{id: org.example.image, version: 1.0.0, command: [x], inputs: [{name: prompt, type: text, required: true}], outputs: [{name: image, type: image, media: {accepted_mime_types: [image/png]}}]}`,
  `{id: org.example.bytes, version: 1.0.0, command: [x], inputs: [{name: blob, type: binary, required: true}], outputs: []}`,
  `{id: org.example.live, version: 1.0.0, command: [x], inputs: [], outputs: [{name: tokens, type: stream, backpressure: fail, media: {accepted_mime_types: [text/plain]}}, {name: raw, type: stream}, {name: text, type: text}]}`,
  `{id: org.example.reader, version: 1.0.0, command: [x], inputs: [{name: live, type: stream, required: true}], outputs: []}`,
  `{id: org.example.video, version: 2.0.0, command: [x], resource_profile: video_processing, inputs: [{name: clip, type: video, required: true, media: {accepted_mime_types: [video/mp4]}}], outputs: []}`,
];
const catalog = new AgentCatalog(new MemoryAgentStore());
beforeAll(async () => {
  for (const text of agents) {
    const { manifest, violations } = parseManifestText(text);
    expect(violations.list).toEqual([]);
    if (manifest) await catalog.store.put(manifest);
  }
});

async function check(yaml: string, inputs: Record<string, { case: "text"; value: string } | { case: "inlineBytes"; value: Uint8Array }> = {}) {
  const parsed = parseFlowText(yaml);
  expect(parsed.violations.list).toEqual([]);
  const submitted = Object.fromEntries(Object.entries(inputs).map(([k, value]) => [k, create(PinValueSchema, { value })]));
  if (!parsed.flow) throw new Error("unparsed");
  return checkFlow(parsed.flow, submitted, catalog);
}

describe("flow parsing", () => {
  it("reads the design's shape with durations and retry policies", () => {
    const { flow, violations } = parseFlowText(`
apiVersion: v1
kind: Flow
meta: { id: demo, name: Demo, version: "1", createdAt: "2025-01-01T00:00:00Z" }
graph:
  nodes:
    - { id: a, type: org.example.text, params: { n: 1 }, timeout: 30s, retry: { maxAttempts: 3, backoff: linear, initialDelay: 500ms } }
  edges: [{ from: a.text, to: b.prompt }]
`);
    expect(violations.list).toEqual([]);
    const node = flow?.graph?.nodes[0];
    expect(node?.agent).toBe("org.example.text");
    expect(node?.params).toEqual({ n: 1 });
    expect(node?.timeout?.seconds).toBe(30n);
    expect(node?.retry?.backoff).toBe(BackoffKind.LINEAR);
    expect(node?.retry?.initialDelay?.nanos).toBe(500_000_000);
    expect(flow?.meta?.createdAt?.seconds).toBe(1735689600n);
  });

  it("reports unreadable durations, backoffs and unknown fields", () => {
    const { violations } = parseFlowText(`graph: { nodes: [{ id: a, agent: x, timeout: soon, retry: { backoff: random }, colour: red }] }`);
    expect(violations.list.map((v) => `${v.fieldPath} ${v.rule}`).sort()).toEqual([
      "graph.nodes[0].colour field.unknown",
      "graph.nodes[0].retry.backoff retry.backoff_known",
      "graph.nodes[0].timeout field.duration",
    ]);
  });
});

describe("flow validation", () => {
  it("accepts a valid flow and orders it topologically, ties by id", async () => {
    const result = await check(
      `graph:
  nodes: [{id: z, agent: org.example.text}, {id: b, agent: org.example.image}, {id: a, agent: org.example.text}, {id: bytes, agent: org.example.bytes}]
  edges: [{from: z.text, to: b.prompt}, {from: b.image, to: bytes.blob}, {from: z.data, to: a.style}, {from: z.text, to: a.prompt}]`,
      { "z.prompt": { case: "text", value: "hi" } },
    );
    expect(result.violations).toEqual([]);
    expect(result.order).toEqual(["z", "a", "b", "bytes"]);
    expect(result.plan?.nodes.get("z")?.downstream).toEqual(["a", "b"]);
    expect(result.plan?.nodes.get("b")?.inputs.get("prompt")).toEqual({ kind: "edge", edges: [{ node: "z", pin: "text" }] });
  });

  it("reports every problem at once", async () => {
    const result = await check(
      `kind: Pipeline
graph:
  nodes:
    - {id: a, agent: org.example.text}
    - {id: a, agent: org.example.text}
    - {id: ghost, agent: org.example.nope}
    - {id: old, agent: org.example.video, agent_version: "^1"}
    - {id: img, agent: org.example.image}
    - {id: vid, agent: org.example.video}
    - {id: c1, agent: org.example.text}
    - {id: c2, agent: org.example.text}
    - {id: 9bad, agent: org.example.text}
  edges:
    - {from: img.image, to: vid.clip}
    - {from: img.image, to: a.nope}
    - {from: nowhere.x, to: a.prompt}
    - {from: a-text, to: img.prompt}
    - {from: c1.text, to: c2.prompt}
    - {from: c2.text, to: c1.prompt}
    - {from: a.text, to: img.prompt}
    - {from: c1.data, to: img.prompt}`,
      { "img.prompt": { case: "text", value: "x" }, "a.style": { case: "inlineBytes", value: new Uint8Array(1) }, "zz.prompt": { case: "text", value: "" } },
    );
    expect(result.plan).toBeUndefined();
    expect(result.violations.map((v) => `${v.fieldPath} ${v.rule}`).sort()).toEqual(
      [
        "kind flow.kind",
        "graph.nodes[1].id node.id_unique",
        "graph.nodes[2].agent node.agent_known",
        "graph.nodes[3].agent node.agent_version",
        "graph.nodes[8].id node.id",
        "graph.edges[0] edge.pin_type",
        "graph.edges[1].to edge.pin_known",
        "graph.edges[2].from edge.node_known",
        "graph.edges[3].from edge.endpoint",
        "graph.edges[7] edge.pin_type",
        "graph.edges[7].to edge.input_bound_once",
        'inputs["img.prompt"] input.bound_once',
        'inputs["a.style"] input.value_type',
        'inputs["zz.prompt"] input.node_known',
        "graph.nodes[0] input.required_unbound",
        "graph.nodes[8] input.required_unbound",
        "graph.edges flow.acyclic",
      ].sort(),
    );
    expect(result.violations.find((v) => v.rule === "flow.acyclic")?.message).toContain("c1, c2");
  });

  it("lets media feed binary pins and text feed json pins, but not the reverse", async () => {
    const ok = await check(
      `graph: {nodes: [{id: i, agent: org.example.image}, {id: b, agent: org.example.bytes}, {id: t, agent: org.example.text}], edges: [{from: i.image, to: b.blob}, {from: t.text, to: t.style}]}`,
      { "i.prompt": { case: "text", value: "x" }, "t.prompt": { case: "text", value: "y" } },
    );
    expect(ok.violations.map((v) => v.rule)).toEqual(["flow.acyclic"]);
    const bad = await check(`graph: {nodes: [{id: t, agent: org.example.text}, {id: u, agent: org.example.text}], edges: [{from: t.data, to: u.prompt}]}`, {
      "t.prompt": { case: "text", value: "x" },
    });
    expect(bad.violations.map((v) => v.rule)).toEqual(["edge.pin_type"]);
  });
});

describe("stream edge backpressure", () => {
  it("takes the edge's policy and window, else the source pin's default, and names each downstream node once", async () => {
    const result = await check(`
graph:
  nodes: [{ id: live, agent: org.example.live }, { id: slow, agent: org.example.reader }, { id: strict, agent: org.example.reader }, { id: loose, agent: org.example.reader }]
  edges:
    - { from: live.tokens, to: slow.live, backpressure: block, backpressure_window_bytes: 1Mi }
    - { from: live.tokens, to: strict.live }
    - { from: live.raw, to: loose.live }
`);
    expect(result.violations).toEqual([]);
    if (!result.plan) throw new Error("no plan");
    expect(streamConsumers(result.plan, "live", "tokens")).toEqual([
      { nodeId: "slow", policy: BackpressurePolicy.BLOCK, windowBytes: 1_048_576n },
      { nodeId: "strict", policy: BackpressurePolicy.FAIL, windowBytes: 0n },
    ]);
    expect(streamConsumers(result.plan, "live", "raw")).toEqual([]);
  });

  it("refuses backpressure on an edge that is not a stream, an unknown policy and a bad window, with their paths", async () => {
    const parsed = parseFlowText(
      `graph: { nodes: [{ id: a, agent: x }], edges: [{ from: a.x, to: b.y, backpressure: wait, backpressure_window_bytes: lots }] }`,
    );
    expect(parsed.violations.list.map((v) => `${v.fieldPath} ${v.rule}`).sort()).toEqual([
      "graph.edges[0].backpressure stream.backpressure_known",
      "graph.edges[0].backpressure_window_bytes edge.backpressure_window",
    ]);
    const result = await check(`
graph:
  nodes: [{ id: live, agent: org.example.live }, { id: t, agent: org.example.text }]
  edges: [{ from: live.text, to: t.prompt, backpressure: block, backpressure_window_bytes: 4096 }]
`);
    expect(result.violations.map((v) => `${v.fieldPath} ${v.rule}`)).toEqual([
      "graph.edges[0].backpressure edge.backpressure_stream",
      "graph.edges[0].backpressure_window_bytes edge.backpressure_stream",
    ]);
    expect(result.violations[0]?.message).toContain("live.text carries text, not a stream");
  });

  it("lets only stream output pins of a manifest declare a default", () => {
    const { manifest } = parseManifestText(
      `{id: org.example.bad, version: 1.0.0, command: [x], inputs: [{name: live, type: stream, backpressure: block}], outputs: [{name: text, type: text, backpressure: fail}]}`,
    );
    if (!manifest) throw new Error("unparsed");
    expect(validateManifest(manifest).map((v) => `${v.fieldPath} ${v.rule}`)).toEqual([
      "inputs[0].backpressure pin.backpressure_stream_output",
      "outputs[0].backpressure pin.backpressure_stream_output",
    ]);
  });
});
