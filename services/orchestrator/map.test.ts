import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NodeState, ReuseKind, type Run, type RunEvent, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { jsonOf, jsonPinValue } from "../../agent-contract/pin-values.js";
import { TestOrchestrator, type TestOrchestratorOptions, testAgentManifest, text, watchAll } from "./testing.js";

const pins = "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]";
const mapItem = testAgentManifest("org.test.map-item", "map-item.mjs", pins);
const cachedMapItem = testAgentManifest("org.test.map-item-cached", "map-item.mjs", pins, "cacheable: true");
const source = testAgentManifest("org.test.source", "stream-source.mjs", "outputs: [{name: live, type: stream}]", "capabilities: [streaming]");
const looker = testAgentManifest(
  "org.test.looker",
  "map-item.mjs",
  "inputs: [{name: image, type: image, media: {acceptedMimeTypes: [image/png], maxSizeBytes: 1000}}]\noutputs: [{name: text, type: text}]",
);
const live = testAgentManifest("org.test.live-in", "stream-sink.mjs", "inputs: [{name: live, type: stream}]\noutputs: [{name: text, type: text}]");

let orch: TestOrchestrator;
afterEach(async () => {
  await orch.close();
});

async function start(options: TestOrchestratorOptions = {}) {
  orch = new TestOrchestrator(options);
  await orch.register(mapItem, cachedMapItem, source, live, looker);
  mkdirSync(join(orch.dataDir, "markers"));
  return orch.client();
}

const ledgerPath = () => join(orch.dataDir, "ledger");
const ledger = () => (existsSync(ledgerPath()) ? readFileSync(ledgerPath(), "utf8").split("\n").filter(Boolean) : []);
const starts = () => ledger().filter((line) => line.startsWith("start "));

/** Most items between their `start` and `end` lines at any moment. */
function maxInFlight(lines: readonly string[]): number {
  let now = 0;
  let most = 0;
  for (const line of lines) {
    now += line.startsWith("start ") ? 1 : -1;
    most = Math.max(most, now);
  }
  return most;
}

/** A one-node (or more) flow; `node` is the YAML mapping of the mapped node without its params. */
function flow(nodes: string[], edges: string[] = []) {
  return {
    source: {
      source: {
        case: "text" as const,
        value: `apiVersion: v1\nkind: Flow\nmeta: {id: map}\ngraph:\n  nodes: [${nodes.join(", ")}]\n  edges: [${edges.join(", ")}]`,
      },
    },
  };
}
const params = (extra: Record<string, unknown> = {}) => JSON.stringify({ ledger: ledgerPath(), markers: join(orch.dataDir, "markers"), ...extra });
const items = (n: number) => Array.from({ length: n }, (_, i) => `i${i}`);
const list = (values: string[]) => jsonPinValue(values);
const listOf = (run: Run | undefined, key: string) => {
  const value = run?.outputs[key]?.value;
  return value?.case === "json" ? jsonOf(value.value) : value;
};
const itemStates = (run: Run | undefined, node: string) => run?.nodes.find((n) => n.nodeId === node)?.map?.items.map((item) => NodeState[item.state]);
const mapEvents = (events: RunEvent[]) => events.flatMap((e) => (e.event.case === "mapItem" ? [e.event.value] : []));

describe("map over a list", () => {
  it("runs 100 items at most 8 at once, collects the outputs in item order, and shows every item in WatchRun", async () => {
    const client = await start({ config: { maxConcurrentNodes: 12 } });
    const node = `{id: each, agent: org.test.map-item, map: {pin: text, concurrency: 8}, params: ${params({ gather: 8 })}}`;
    const values = items(100);
    const runId = (await client.submitFlow({ ...flow([node]), inputs: { "each.text": list(values) } })).run?.runId ?? "";
    const events = await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;

    expect(run?.state).toBe(RunState.SUCCEEDED);
    expect(maxInFlight(ledger())).toBe(8);
    expect(starts()).toHaveLength(100);
    expect(listOf(run, "each.text")).toEqual(values.map((v) => `${v}!`));
    const each = run?.nodes[0];
    expect(each?.map?.total).toBe(100);
    expect(each?.map?.items.every((item) => item.state === NodeState.SUCCEEDED && item.tries === 1)).toBe(true);
    // Attempt numbers are unique across the node's items, so a sidecar's run token names its item.
    expect(new Set(each?.map?.items.map((item) => item.attempt)).size).toBe(100);
    expect(each?.attempt).toBe(100);

    const changes = mapEvents(events);
    expect(changes.filter((c) => c.state === NodeState.RUNNING)).toHaveLength(100);
    expect(
      changes
        .filter((c) => c.state === NodeState.SUCCEEDED)
        .map((c) => c.index)
        .sort((a, b) => a - b),
    ).toEqual(values.map((_, i) => i));
    expect(changes.at(-1)).toMatchObject({ nodeId: "each", succeeded: 100, failed: 0, total: 100 });
    const itemOutputs = events.flatMap((e) =>
      e.event.case === "agent" && e.event.value.event.case === "output" && e.itemIndex !== undefined
        ? [[e.itemIndex, e.event.value.event.value.value?.value.value]]
        : [],
    );
    expect(itemOutputs.sort(([a], [b]) => Number(a) - Number(b))).toEqual(values.map((v, i) => [i, `${v}!`]));
    const nodeTrail = events.flatMap((e) => (e.event.case === "nodeState" ? [`${NodeState[e.event.value.state]} ${e.event.value.reason}`] : []));
    expect(nodeTrail).toEqual(["RUNNING mapping over 100 items of text, at most 8 at once", "SUCCEEDED "]);
  }, 120_000);

  it("fail fast: the first item that fails cancels the rest, and the node fails naming it", async () => {
    const client = await start();
    const node = `{id: each, agent: org.test.map-item, map: {pin: text, concurrency: 2}, params: ${params({ fail: ["i3"] })}}`;
    const runId = (await client.submitFlow({ ...flow([node]), inputs: { "each.text": list(items(10)) } })).run?.runId ?? "";
    await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(run?.state).toBe(RunState.FAILED);
    const states = itemStates(run, "each") ?? [];
    expect(states[3]).toBe("FAILED");
    const cancelled = states.filter((s) => s === "CANCELLED").length;
    expect(cancelled).toBeGreaterThanOrEqual(5);
    expect(states.every((s, i) => i === 3 || s === "SUCCEEDED" || s === "CANCELLED")).toBe(true);
    expect(starts().length).toBeLessThan(10);
    expect(run?.nodes[0]?.error).toMatch(new RegExp(`^item 3 of 10 failed, ${cancelled} cancelled; item 3: agent exited with code 1`));
  });

  it("fail fast also cancels the items waiting for one of the orchestrator's slots, which bound items too", async () => {
    const client = await start({ config: { maxConcurrentNodes: 1 } });
    const node = `{id: each, agent: org.test.map-item, map: {pin: text, concurrency: 3}, params: ${params({ fail: ["i0"] })}}`;
    const runId = (await client.submitFlow({ ...flow([node]), inputs: { "each.text": list(items(4)) } })).run?.runId ?? "";
    await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(maxInFlight(ledger())).toBe(1);
    expect(starts()).toEqual(["start i0"]);
    expect(itemStates(run, "each")).toEqual(["FAILED", "CANCELLED", "CANCELLED", "CANCELLED"]);
    expect(run?.nodes[0]?.error).toMatch(/^item 0 of 4 failed, 3 cancelled; item 0: /);
  });

  it("continue: every item runs, transient failures retry per item, the node fails listing the failed items; RetryRun reruns only those", async () => {
    const client = await start();
    const node =
      `{id: each, agent: org.test.map-item, map: {pin: text, concurrency: 3, on_failure: continue},` +
      ` retry: {max_attempts: 2, backoff: fixed, initial_delay: 50ms}, params: ${params({ fail: ["i2", "i5"], fail_once: true, transient: ["i7"] })}}`;
    const values = items(10);
    const runId = (await client.submitFlow({ ...flow([node]), inputs: { "each.text": list(values) } })).run?.runId ?? "";
    const events = await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(run?.state).toBe(RunState.FAILED);
    expect(run?.nodes[0]?.error).toMatch(/^items 2, 5 of 10 failed; item 2: agent exited with code 1/);
    expect(itemStates(run, "each")).toEqual(values.map((_, i) => (i === 2 || i === 5 ? "FAILED" : "SUCCEEDED")));
    expect(run?.nodes[0]?.map?.items[7]?.tries).toBe(2);
    expect(mapEvents(events).some((c) => c.index === 7 && c.state === NodeState.RETRYING)).toBe(true);
    expect(starts()).toHaveLength(11);
    expect(run?.nodes[0]?.map?.items[9]?.outputs.text?.value).toEqual({ case: "text", value: "i9!" });

    const retried = (await client.retryRun({ runId })).run?.runId ?? "";
    const retryEvents = await watchAll(client, retried);
    const again = (await client.getRun({ runId: retried })).run;
    expect(again?.state).toBe(RunState.SUCCEEDED);
    expect(starts().slice(11).sort()).toEqual(["start i2", "start i5"]);
    expect(listOf(again, "each.text")).toEqual(values.map((v) => `${v}!`));
    const kept = again?.nodes[0]?.map?.items.filter((item) => item.reused?.kind === ReuseKind.RETRY).map((item) => [item.index, item.reused?.runId]);
    expect(kept).toEqual([0, 1, 3, 4, 6, 7, 8, 9].map((i) => [i, runId]));
    expect(mapEvents(retryEvents).find((c) => c.index === 0)?.reason).toBe(`reused from run ${runId} node each (retry)`);
  });

  it("takes each item from the node cache by its own input when the agent is cacheable", async () => {
    const client = await start();
    const node = `{id: each, agent: org.test.map-item-cached, map: {pin: text, concurrency: 2}, params: ${params()}}`;
    const first = (await client.submitFlow({ ...flow([node]), inputs: { "each.text": list(["a", "b", "c"]) } })).run?.runId ?? "";
    await watchAll(client, first);
    const second = (await client.submitFlow({ ...flow([node]), inputs: { "each.text": list(["b", "c", "d"]) } })).run?.runId ?? "";
    await watchAll(client, second);
    const run = (await client.getRun({ runId: second })).run;
    expect(run?.state).toBe(RunState.SUCCEEDED);
    expect(starts().sort()).toEqual(["start a", "start b", "start c", "start d"]);
    expect(listOf(run, "each.text")).toEqual(["b!", "c!", "d!"]);
    expect(run?.nodes[0]?.map?.items.map((item) => item.reused?.kind ?? ReuseKind.UNSPECIFIED)).toEqual([
      ReuseKind.CACHE,
      ReuseKind.CACHE,
      ReuseKind.UNSPECIFIED,
    ]);
  });

  it("maps a mapped node's list again: a list output feeds a mapped input of the item type", async () => {
    const client = await start();
    const nodes = [
      `{id: first, agent: org.test.map-item, map: {pin: text, concurrency: 2}, params: ${params()}}`,
      `{id: second, agent: org.test.map-item, map: text, params: ${params()}}`,
    ];
    const runId = (await client.submitFlow({ ...flow(nodes, ["{from: first.text, to: second.text}"]), inputs: { "first.text": list(["x", "y"]) } })).run?.runId;
    await watchAll(client, runId ?? "");
    const run = (await client.getRun({ runId: runId ?? "" })).run;
    expect(run?.state).toBe(RunState.SUCCEEDED);
    expect(listOf(run, "second.text")).toEqual(["x!!", "y!!"]);
  });

  it("reports every problem with a map before the run starts, each with its path", async () => {
    const client = await start();
    const nodes = [
      `{id: a, agent: org.test.map-item, map: {pin: nothing}, params: ${params()}}`,
      `{id: b, agent: org.test.live-in, map: live}`,
      `{id: c, agent: org.test.map-item, map: {pin: text, concurrency: 0}}`,
      `{id: d, agent: org.test.map-item, map: {pin: text, concurrency: 65, on_failure: later}}`,
      `{id: e, agent: org.test.map-item, map: text}`,
      `{id: f, agent: org.test.map-item, map: text}`,
      `{id: g, agent: org.test.map-item}`,
      `{id: h, agent: org.test.source, map: live}`,
      "{id: src, agent: org.test.source}",
    ];
    const inputs = { "a.text": text("t"), "c.text": list(["x"]), "d.text": list(["x"]), "e.text": text("not a list"), "f.text": jsonPinValue(["ok", 3]) };
    const result = await client.validateFlow({ ...flow(nodes, ["{from: c.text, to: g.text}", "{from: src.live, to: b.live}"]), inputs });
    expect(result.violations.map((v) => [v.fieldPath, v.rule])).toEqual([
      ["graph.nodes[3].map.on_failure", "map.on_failure_known"],
      ["graph.nodes[0].map.pin", "map.pin_known"],
      ["graph.nodes[1].map.pin", "map.pin_stream"],
      ["graph.nodes[2].map.concurrency", "map.concurrency"],
      ["graph.nodes[3].map.concurrency", "map.concurrency"],
      ["graph.nodes[7].map", "map.stream_output"],
      ["graph.nodes[7].map.pin", "map.pin_known"],
      ["graph.edges[0]", "edge.pin_type"],
      ['inputs["e.text"]', "map.input_list"],
      ['inputs["f.text"]', "map.input_list"],
    ]);
    const message = (rule: string, path: string) => result.violations.find((v) => v.rule === rule && v.fieldPath === path)?.message;
    expect(message("edge.pin_type", "graph.edges[0]")).toBe("c.text carries a json list of text but g.text takes text");
    expect(message("map.input_list", 'inputs["f.text"]')).toBe("f.text is mapped over: item 1 does not fit a text pin: give a string");
    const refused = await client.submitFlow({ ...flow(nodes.slice(4, 5)), inputs: { "e.text": text("x") } }).catch((err: unknown) => err);
    expect(String(refused)).toMatch(/^ConnectError: \[invalid_argument\]/);
    expect(String(refused)).toContain("e.text is mapped over: a mapped input takes a json list, not a text value");
  });

  it("holds each submitted media item of a mapped media pin to the pin's limits", async () => {
    const client = await start();
    const ref = (mimeType: string, sizeBytes: number) => ({
      media: { id: `ref_${mimeType.replace("/", "_")}`, sha256: "ab".repeat(32), mimeType, sizeBytes: String(sizeBytes) },
    });
    const result = await client.validateFlow({
      ...flow(["{id: look, agent: org.test.looker, map: image}"]),
      inputs: { "look.image": jsonPinValue([ref("image/png", 10), ref("text/plain", 10), ref("image/png", 5000)]) },
    });
    expect(result.violations.map((v) => [v.fieldPath, v.rule])).toEqual([
      ['inputs["look.image"][1]', "input.media_constraints"],
      ['inputs["look.image"][2]', "input.media_constraints"],
    ]);
  });
});
