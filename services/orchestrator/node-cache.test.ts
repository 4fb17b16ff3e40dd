import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { create, fromJson, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it } from "vitest";
import { MediaRefSchema, PinType, type PinValue, PinValueSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { CacheMode, FlowNodeSchema, ReuseKind, type Run, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentManifestSchema, PinSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import type { PlannedNode } from "./flow-validate.js";
import { nodeCacheKey } from "./node-cache.js";
import { stateTrail, TestOrchestrator, testAgentManifest, text, watchAll } from "./testing.js";

const pins = "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]";
const cachedLedger = testAgentManifest("org.test.ledger", "ledger.mjs", pins, "cacheable: true");
const plainLedger = testAgentManifest("org.test.plain-ledger", "ledger.mjs", pins);

describe("node cache keys", () => {
  const planned = (
    params: Record<string, string>,
    extra: { version?: string; image?: string; command?: string[]; env?: Record<string, string>; streamOut?: boolean; cacheable?: boolean } = {},
  ): PlannedNode => ({
    node: create(FlowNodeSchema, { id: "n", agent: "org.test.k", params }),
    manifest: create(AgentManifestSchema, {
      id: "org.test.k",
      version: extra.version ?? "1.0.0",
      image: extra.image ?? "",
      command: extra.command ?? ["node", "k.mjs"],
      env: extra.env ?? {},
      cacheable: extra.cacheable ?? true,
      inputs: [create(PinSchema, { name: "in", type: PinType.BINARY })],
      outputs: [create(PinSchema, { name: "out", type: extra.streamOut ? PinType.STREAM : PinType.TEXT })],
    }),
    inputs: new Map([["in", { kind: "submitted", key: "n.in" }]]),
    downstream: [],
  });
  const bytes = (data: string): PinValue => create(PinValueSchema, { value: { case: "inlineBytes", value: new TextEncoder().encode(data) } });
  const media = (id: string, sha256: string): PinValue => create(PinValueSchema, { value: { case: "media", value: create(MediaRefSchema, { id, sha256 }) } });
  const json = (value: JsonValue) => create(PinValueSchema, { value: { case: "json", value: fromJson(ValueSchema, value) } });
  // sha256("hello")
  const helloSha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

  it("hashes content, not how it travels: inline bytes and a MediaRef of the same bytes, any ref id, give one key", () => {
    const node = planned({ size: "s" });
    const key = nodeCacheKey(node, { in: bytes("hello") });
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(nodeCacheKey(node, { in: media("ref_1", helloSha) })).toBe(key);
    expect(nodeCacheKey(node, { in: media("ref_2", helloSha.toUpperCase()) })).toBe(key);
    expect(nodeCacheKey(node, { in: bytes("hellp") })).not.toBe(key);
    expect(nodeCacheKey(node, { in: media("ref_3", "") })).toBeUndefined();
  });

  it("changes with the agent version, its image, how it starts, and the parameters, whatever their key order", () => {
    const input = { in: bytes("hello") };
    const key = nodeCacheKey(planned({ a: "1", b: "2" }), input);
    expect(nodeCacheKey(planned({ b: "2", a: "1" }), input)).toBe(key);
    expect(nodeCacheKey(planned({ a: "1", b: "3" }), input)).not.toBe(key);
    expect(nodeCacheKey(planned({ a: "1", b: "2" }, { version: "1.0.1" }), input)).not.toBe(key);
    expect(nodeCacheKey(planned({ a: "1", b: "2" }, { image: "reg/k@sha256:00" }), input)).not.toBe(key);
    // The same version registered again with another start-up must not reuse the old outputs.
    expect(nodeCacheKey(planned({ a: "1", b: "2" }, { command: ["node", "k2.mjs"] }), input)).not.toBe(key);
    expect(nodeCacheKey(planned({ a: "1", b: "2" }, { env: { MODEL: "large" } }), input)).not.toBe(key);
    expect(nodeCacheKey(planned({}), { in: json({ x: 1, y: 2 }) })).toBe(nodeCacheKey(planned({}), { in: json({ y: 2, x: 1 }) }));
  });

  it("has no key for an agent not marked cacheable, for stream outputs, and for a stream input", () => {
    expect(nodeCacheKey(planned({}, { cacheable: false }), { in: bytes("x") })).toBeUndefined();
    expect(nodeCacheKey(planned({}, { streamOut: true }), { in: bytes("x") })).toBeUndefined();
    expect(nodeCacheKey(planned({}), { in: create(PinValueSchema, { value: { case: "stream", value: { streamId: "s" } } }) })).toBeUndefined();
  });
});

describe("runs reusing cached nodes", () => {
  let orch: TestOrchestrator;
  afterEach(async () => {
    await orch.close();
  });

  async function start(config: ConstructorParameters<typeof TestOrchestrator>[0] = {}) {
    orch = new TestOrchestrator(config);
    await orch.register(cachedLedger, plainLedger);
    return orch.client();
  }
  const ledger = () => join(orch.dataDir, "ledger");
  /** Agent starts so far, one node id each. */
  const starts = () => (existsSync(ledger()) ? readFileSync(ledger(), "utf8").split("\n").filter(Boolean) : []);

  /** a → b → c, and d on its own input; every node the cacheable ledger agent unless `agent` says otherwise, `extra` adds params by node. */
  const flow = (agent = "org.test.ledger", extra: Readonly<Record<string, string>> = {}) => {
    const nodes = ["a", "b", "c", "d"].map((id) => `{id: ${id}, agent: ${agent}, params: {ledger: ${JSON.stringify(ledger())}${extra[id] ?? ""}}}`);
    return {
      case: "text" as const,
      value: `apiVersion: v1\nkind: Flow\nmeta: {id: cached}\ngraph:\n  nodes: [${nodes.join(", ")}]\n  edges: [{from: a.text, to: b.text}, {from: b.text, to: c.text}]`,
    };
  };

  async function runToEnd(
    client: ReturnType<TestOrchestrator["client"]>,
    inputs: { a: string; d: string },
    options: { cache?: CacheMode; agent?: string; extra?: Record<string, string> } = {},
  ) {
    const before = starts().length;
    const { run } = await client.submitFlow({
      source: { source: flow(options.agent, options.extra) },
      inputs: { "a.text": text(inputs.a), "d.text": text(inputs.d) },
      cache: options.cache ?? CacheMode.UNSPECIFIED,
    });
    const events = await watchAll(client, run?.runId ?? "");
    const done = (await client.getRun({ runId: run?.runId ?? "" })).run as Run;
    return { run: done, events, started: starts().slice(before).sort() };
  }
  const outputBytes = (run: Run) =>
    Object.fromEntries(Object.entries(run.outputs).map(([k, v]) => [k, Buffer.from(toBinary(PinValueSchema, v)).toString("hex")]));

  it("reruns a flow with the same inputs without starting one agent, outputs byte-identical, each node linked to the run that made it", async () => {
    const client = await start();
    const first = await runToEnd(client, { a: "x", d: "y" });
    expect(first.started).toEqual(["a", "b", "c", "d"]);
    const again = await runToEnd(client, { a: "x", d: "y" });
    expect(again.started).toEqual([]);
    expect(again.run.state).toBe(RunState.SUCCEEDED);
    expect(outputBytes(again.run)).toEqual(outputBytes(first.run));
    expect(again.run.outputs["c.text"]?.value).toEqual({ case: "text", value: "x>a>b>c" });
    expect(again.run.nodes.map((n) => [n.nodeId, n.reused?.kind, n.reused?.runId, n.reused?.nodeId])).toEqual(
      ["a", "b", "c", "d"].map((id) => [id, ReuseKind.CACHE, first.run.runId, id]),
    );
    // No node started: the run went from pending to succeeded, each node's event saying where its outputs came from.
    expect(stateTrail(again.events)).toEqual(["run PENDING", "a SUCCEEDED 0", "d SUCCEEDED 0", "b SUCCEEDED 0", "c SUCCEEDED 0", "run SUCCEEDED"]);
    const cached = again.events.find((e) => e.event.case === "nodeState" && e.nodeId === "b");
    expect(cached?.event.case === "nodeState" && cached.event.value.reason).toBe(`reused from run ${first.run.runId} node b (cached)`);
  });

  it("reruns exactly the nodes whose inputs changed, and what depends on them", async () => {
    const client = await start();
    await runToEnd(client, { a: "x", d: "y" });
    expect((await runToEnd(client, { a: "x", d: "z" })).started).toEqual(["d"]);
    const changed = await runToEnd(client, { a: "w", d: "y" });
    expect(changed.started).toEqual(["a", "b", "c"]);
    expect(changed.run.outputs["c.text"]?.value).toEqual({ case: "text", value: "w>a>b>c" });
    // A parameter is part of the key as well; c runs not, as b's new run gave it the same input as before.
    expect((await runToEnd(client, { a: "x", d: "y" }, { extra: { b: ", note: changed" } })).started).toEqual(["b"]);
  });

  it("follows the submitted cache mode, leaves agents not marked cacheable alone, and forgets entries after the TTL", async () => {
    const client = await start({ config: { cacheTtlSeconds: 0.6 } });
    const inputs = { a: "x", d: "y" };
    expect((await runToEnd(client, inputs, { cache: CacheMode.OFF })).started).toHaveLength(4);
    // OFF stored nothing; READ reads but stores nothing either.
    expect((await runToEnd(client, inputs, { cache: CacheMode.READ })).started).toHaveLength(4);
    // WRITE always runs, and stores.
    expect((await runToEnd(client, inputs, { cache: CacheMode.WRITE })).started).toHaveLength(4);
    expect((await runToEnd(client, inputs, { cache: CacheMode.READ })).started).toEqual([]);
    expect((await runToEnd(client, inputs, { agent: "org.test.plain-ledger" })).started).toHaveLength(4);
    expect((await runToEnd(client, inputs, { agent: "org.test.plain-ledger" })).started).toHaveLength(4);
    await new Promise((r) => setTimeout(r, 700));
    expect((await runToEnd(client, inputs)).started).toHaveLength(4);
  });

  it("never caches a failure: the node that failed runs again next time, the rest comes from the cache", async () => {
    const client = await start();
    const failOnce = { b: `, fail_once: ${JSON.stringify(join(orch.dataDir, "b-failed"))}` };
    const failed = await runToEnd(client, { a: "x", d: "y" }, { extra: failOnce });
    expect(failed.run.state).toBe(RunState.FAILED);
    const next = await runToEnd(client, { a: "x", d: "y" }, { extra: failOnce });
    expect(next.run.state).toBe(RunState.SUCCEEDED);
    expect(next.started).toEqual(["b", "c"]);
  });
});
