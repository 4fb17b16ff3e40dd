import { getPriority } from "node:os";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AgentEventSchema, LogLevel, ProgressEventSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { ListRunsRequestSchema, NodeState, type RunEvent, RunState, ValidateFlowResponseSchema } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { messageValidator } from "../shared/validation.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { MemoryRunStore } from "./memory-run-store.js";
import { jsonOf } from "../../agent-contract/pin-values.js";
import { streamServiceOpener } from "./stream-opener.js";
import { expectDead, stateTrail, TestOrchestrator, testAgentManifest, text, watchAll } from "./testing.js";

const textIn = "inputs: [{name: text, type: text, required: true}]";
const manifests = [
  testAgentManifest("org.test.echo", "echo.mjs", `${textIn}\noutputs: [{name: text, type: text}, {name: spec_seen, type: json}]`),
  testAgentManifest("org.test.flaky", "flaky.mjs", `inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]`),
  testAgentManifest("org.test.sleep", "sleep.mjs", `inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]`),
  testAgentManifest("org.test.crash", "crash.mjs", `inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]`),
  testAgentManifest("org.test.priority", "priority.mjs", "outputs: [{name: nice, type: json}]"),
  testAgentManifest("org.test.envecho", "echo.mjs", `${textIn}\noutputs: [{name: text, type: text}, {name: spec_seen, type: json}]`, "env: {FROM_ENV: '1'}"),
];

let orch: TestOrchestrator;
async function start(config: ConstructorParameters<typeof TestOrchestrator>[0] = {}) {
  orch = new TestOrchestrator(config);
  await orch.register(...manifests);
  return orch.client();
}
afterEach(async () => {
  await orch.close();
});

const flow = (nodes: string, edges = "[]") => ({
  source: { case: "text" as const, value: `apiVersion: v1\nkind: Flow\nmeta: {id: t}\ngraph:\n  nodes: ${nodes}\n  edges: ${edges}` },
});

describe("running flows with plain-contract agents", () => {
  it("runs a chain, passing values along edges, and reports every event gap-free", async () => {
    const client = await start();
    const { run } = await client.submitFlow({
      source: flow(
        `[{id: a, agent: org.test.echo, params: {suffix: "-a"}}, {id: b, agent: org.test.envecho, params: {suffix: "-b"}}]`,
        `[{from: a.text, to: b.text}]`,
      ),
      inputs: { "a.text": text("hi") },
    });
    const events = await watchAll(client, run?.runId ?? "");
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => BigInt(i + 1)));
    expect(stateTrail(events)).toEqual(["run PENDING", "run RUNNING", "a RUNNING 1", "a SUCCEEDED 1", "b RUNNING 1", "b SUCCEEDED 1", "run SUCCEEDED"]);
    const agentEvents = events
      .filter((e) => e.nodeId === "a" && e.event.case === "agent")
      .map((e) => (e.event.case === "agent" ? e.event.value.event.case : ""));
    expect(agentEvents).toEqual(["log", "progress", "log", "metric", "output", "output"]);
    const log = events.find((e) => e.event.case === "agent" && e.event.value.event.case === "log");
    expect(log?.event.case === "agent" && log.event.value.correlationId).toBe("c-1");
    const final = (await client.getRun({ runId: run?.runId ?? "" })).run;
    expect(final?.state).toBe(RunState.SUCCEEDED);
    expect(final?.outputs["b.text"]?.value).toEqual({ case: "text", value: "hi-a-b" });
    const seen = final?.outputs["a.spec_seen"]?.value;
    expect(seen?.case === "json" && jsonOf(seen.value)).toEqual({ agent_id: "org.test.echo", params: { suffix: "-a" } });
    expect(final?.nodes.map((n) => [n.nodeId, n.progressPercent, n.agent])).toEqual([
      ["a", 100, "org.test.echo@1.0.0"],
      ["b", 100, "org.test.envecho@1.0.0"],
    ]);
    expect(final?.lastEventSeq).toBe(BigInt(events.length));
  });

  it("runs independent branches in parallel up to the concurrency bound", async () => {
    const nodes = `[{id: a, agent: org.test.sleep, params: {ms: 400}}, {id: b, agent: org.test.sleep, params: {ms: 400}}, {id: c, agent: org.test.echo}]`;
    const edges = `[{from: a.text, to: c.text}]`;
    const parallel = await start({ config: { maxConcurrentNodes: 2 } });
    const p = (await parallel.submitFlow({ source: flow(nodes, edges) })).run?.runId ?? "";
    const trail = stateTrail(await watchAll(parallel, p));
    // Both sleepers start before either finishes; c waits for a.
    expect(trail.indexOf("b RUNNING 1")).toBeLessThan(trail.indexOf("a SUCCEEDED 1"));
    expect(trail.indexOf("c RUNNING 1")).toBeGreaterThan(trail.indexOf("a SUCCEEDED 1"));
    await orch.close();

    const serial = await start({ config: { maxConcurrentNodes: 1 } });
    const s = (await serial.submitFlow({ source: flow(nodes, edges) })).run?.runId ?? "";
    const serialTrail = stateTrail(await watchAll(serial, s)).filter((line) => !line.startsWith("run"));
    expect(serialTrail).toEqual(["a RUNNING 1", "a SUCCEEDED 1", "b RUNNING 1", "b SUCCEEDED 1", "c RUNNING 1", "c SUCCEEDED 1"]);
  });

  it("retries transient failures (exit code 3) with backoff, then gives up after max_attempts", async () => {
    const client = await start();
    const retry = (max: number) => `{max_attempts: ${max}, backoff: linear, initial_delay: 50ms}`;
    const ok =
      (
        await client.submitFlow({
          source: flow(`[{id: f, agent: org.test.flaky, params: {succeed_on: 3}, retry: ${retry(3)}}]`),
          inputs: { "f.text": text("x") },
        })
      ).run?.runId ?? "";
    const okEvents = await watchAll(client, ok);
    expect(stateTrail(okEvents)).toEqual([
      "run PENDING",
      "run RUNNING",
      "f RUNNING 1",
      "f RETRYING 1",
      "f RUNNING 2",
      "f RETRYING 2",
      "f RUNNING 3",
      "f SUCCEEDED 3",
      "run SUCCEEDED",
    ]);
    const retrying = okEvents.find((e) => e.event.case === "nodeState" && e.event.value.state === NodeState.RETRYING);
    expect(retrying?.event.case === "nodeState" && retrying.event.value.reason).toBe("agent exited with code 3: busy on attempt 1; retrying in 0.05 s");
    expect((await client.getRun({ runId: ok })).run?.outputs["f.text"]?.value.value).toBe("ok on attempt 3: x");

    const bad = (await client.submitFlow({ source: flow(`[{id: f, agent: org.test.flaky, params: {succeed_on: 3}, retry: ${retry(2)}}]`) })).run?.runId ?? "";
    await watchAll(client, bad);
    const failed = (await client.getRun({ runId: bad })).run;
    expect(failed?.state).toBe(RunState.FAILED);
    expect(failed?.error).toBe('node "f" failed: agent exited with code 3: busy on attempt 2');
  });

  it("fails a crashed node, skips its downstream, keeps independent branches, and fails the run with the reason", async () => {
    const client = await start();
    const runId =
      (
        await client.submitFlow({
          source: flow(
            `[{id: boom, agent: org.test.crash, retry: {max_attempts: 3}}, {id: after, agent: org.test.echo}, {id: later, agent: org.test.echo}, {id: solo, agent: org.test.echo}]`,
            `[{from: boom.text, to: after.text}, {from: after.text, to: later.text}]`,
          ),
          inputs: { "solo.text": text("s") },
        })
      ).run?.runId ?? "";
    const events = await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(run?.state).toBe(RunState.FAILED);
    expect(run?.error).toBe('node "boom" failed: agent exited with code 1: ValueError: model file missing');
    expect(run?.nodes.map((n) => [n.nodeId, NodeState[n.state], n.attempt])).toEqual([
      ["boom", "FAILED", 1],
      ["after", "SKIPPED", 0],
      ["later", "SKIPPED", 0],
      ["solo", "SUCCEEDED", 1],
    ]);
    expect(run?.nodes.find((n) => n.nodeId === "later")?.error).toBe('upstream node "after" did not run');
    const stderr = events.find((e) => e.event.case === "agent" && e.event.value.event.case === "log" && e.event.value.event.value.level === LogLevel.ERROR);
    expect(stderr?.event.case === "agent" && stderr.event.value.event.case === "log" && stderr.event.value.event.value.message).toContain("Traceback");
  });

  it("retries when a mesh service is unreachable, and says so when it gives up", async () => {
    // A real client to a loopback port where nothing listens: the stream service is down.
    const down = createClient(StreamService, createConnectTransport({ baseUrl: "http://127.0.0.1:9", httpVersion: "1.1" }));
    const client = await start({ streams: streamServiceOpener(down) });
    await orch.register(testAgentManifest("org.test.source", "stream-source.mjs", "outputs: [{name: live, type: stream}]", "capabilities: [streaming]"));
    const runId =
      (await client.submitFlow({ source: flow(`[{id: src, agent: org.test.source, retry: {max_attempts: 2, initial_delay: 10ms}}]`) })).run?.runId ?? "";
    const trail = stateTrail(await watchAll(client, runId));
    expect(trail).toEqual(["run PENDING", "run RUNNING", "src RUNNING 1", "src RETRYING 1", "src RUNNING 2", "src FAILED 2", "run FAILED"]);
    expect((await client.getRun({ runId })).run?.error).toMatch(/^node "src" failed: attempt error: \[unavailable\]/);
  });

  it.each([
    { code: Code.ResourceExhausted, trail: ["src RUNNING 1", "src RETRYING 1", "src RUNNING 2", "src FAILED 2"] },
    { code: Code.InvalidArgument, trail: ["src RUNNING 1", "src FAILED 1"] },
  ])("retries an attempt whose mesh call hit a limit that may lift, not one refused as wrong ($code)", async ({ code, trail }) => {
    const client = await start({ streams: { open: () => Promise.reject(new ConnectError("refused (injected)", code)), endLeftOpen: async () => undefined } });
    await orch.register(testAgentManifest("org.test.source", "stream-source.mjs", "outputs: [{name: live, type: stream}]", "capabilities: [streaming]"));
    const runId =
      (await client.submitFlow({ source: flow(`[{id: src, agent: org.test.source, retry: {max_attempts: 2, initial_delay: 10ms}}]`) })).run?.runId ?? "";
    expect(stateTrail(await watchAll(client, runId))).toEqual(["run PENDING", "run RUNNING", ...trail, "run FAILED"]);
  });

  it("times an attempt out and kills the agent", async () => {
    const client = await start();
    const runId = (await client.submitFlow({ source: flow(`[{id: s, agent: org.test.sleep, params: {ms: 20000}, timeout: 1s}]`) })).run?.runId ?? "";
    const events = await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(run?.error).toBe('node "s" failed: timed out after 1 s');
    const pid = pidFrom(events);
    await expectDead(pid);
  });

  it.each([
    { config: {}, increment: 10 },
    { config: { agentNiceIncrement: 3 }, increment: 3 },
    { config: { agentNiceIncrement: 0 }, increment: 0 },
  ])("runs agents, and what they start, $increment nicer than the mesh", async ({ config, increment }) => {
    const client = await start({ config });
    const runId = (await client.submitFlow({ source: flow(`[{id: p, agent: org.test.priority}]`) })).run?.runId ?? "";
    await watchAll(client, runId);
    const output = (await client.getRun({ runId })).run?.outputs["p.nice"]?.value;
    const expected = Math.min(19, getPriority() + increment);
    expect(output?.case === "json" && jsonOf(output.value)).toEqual({ own: expected, child: expected });
  });

  it("caps a non-Node agent's memory at its resolved resources", async () => {
    const client = await start();
    await orch.register(
      `id: org.test.hog\nversion: 1.0.0\ncommand: [python3, -c, "x = bytearray(512 * 1024 * 1024); print('{\\"result\\": {}}')"]\nresources: {memory: 128Mi}`,
    );
    const runId = (await client.submitFlow({ source: flow(`[{id: h, agent: org.test.hog}]`) })).run?.runId ?? "";
    await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(run?.state).toBe(RunState.FAILED);
    expect(run?.error).toContain("MemoryError");
  });
});

describe("cancelling", () => {
  it("stops running agents, cancels pending nodes, and every watcher sees it within a second", async () => {
    const client = await start();
    const runId =
      (
        await client.submitFlow({
          source: flow(`[{id: s, agent: org.test.sleep, params: {ms: 20000}}, {id: next, agent: org.test.echo}]`, `[{from: s.text, to: next.text}]`),
        })
      ).run?.runId ?? "";
    const watchers = [watchAll(client, runId), watchAll(orch.client({ user: "bob" }), runId)];
    const seen: number[] = [];
    for (;;) {
      const run = (await client.getRun({ runId })).run;
      if (run?.nodes[0]?.state === NodeState.RUNNING && run.lastEventSeq >= 4n) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const started = Date.now();
    const { run } = await client.cancelRun({ runId, reason: "changed my mind" });
    expect(run?.state).toBe(RunState.CANCELLED);
    for (const events of await Promise.all(watchers.map((w) => w.then((e) => (seen.push(Date.now() - started), e))))) {
      expect(stateTrail(events).slice(-3)).toEqual(["s CANCELLED 1", "next CANCELLED 0", "run CANCELLED"]);
      await expectDead(pidFrom(events));
    }
    expect(Math.max(...seen)).toBeLessThan(1000);
    expect(run?.error).toBe("changed my mind");
    expect((await client.cancelRun({ runId })).run?.state).toBe(RunState.CANCELLED);
  });

  it("cancels a run nobody drives any more without starting anything again", async () => {
    const client = await start();
    const runId = (await client.submitFlow({ source: flow(`[{id: s, agent: org.test.sleep, params: {ms: 20000}}]`) })).run?.runId ?? "";
    while ((await client.getRun({ runId })).run?.nodes[0]?.state !== NodeState.RUNNING) await new Promise((r) => setTimeout(r, 20));
    await orch.engine.close();
    const other = new TestOrchestrator({ store: orch.store });
    await other.register(...manifests);
    try {
      const { run } = await other.client().cancelRun({ runId, reason: "orphaned" });
      expect(run?.state).toBe(RunState.CANCELLED);
      expect(stateTrail(await watchAll(other.client(), runId))).toEqual(["run PENDING", "run RUNNING", "s RUNNING 1", "s CANCELLED 1", "run CANCELLED"]);
    } finally {
      await other.engine.close();
    }
  });
});

/** The in-memory store with write faults injected: `failing` writes throw, `lostReplies` land and then throw. */
class FaultyWritesRunStore extends MemoryRunStore {
  failing = 0;
  lostReplies = 0;

  override async append(...args: Parameters<MemoryRunStore["append"]>): Promise<boolean> {
    if (this.failing > 0) {
      this.failing--;
      throw new ConnectError("the run store is unavailable (injected)", Code.Unavailable);
    }
    const stored = await super.append(...args);
    if (this.lostReplies > 0) {
      this.lostReplies--;
      throw new ConnectError("the run store is unavailable (reply lost, injected)", Code.Unavailable);
    }
    return stored;
  }
}

describe("resuming", () => {
  it("writes a run's events once the store answers again, never resending those whose reply was lost", async () => {
    const store = new FaultyWritesRunStore();
    const client = await start({ store });
    // The first writes fail, then one lands with its reply lost while the run still has work to do.
    store.failing = 2;
    store.lostReplies = 1;
    const nodes = `[{id: a, agent: org.test.sleep, params: {ms: 500}}, {id: b, agent: org.test.echo}]`;
    const runId = (await client.submitFlow({ source: flow(nodes, `[{from: a.text, to: b.text}]`), inputs: { "a.text": text("hi") } })).run?.runId ?? "";
    const events = await Promise.race([
      watchAll(client, runId),
      new Promise<never>((_, fail) => setTimeout(() => fail(new Error("the run never finished")), 10_000)),
    ]);
    expect([store.failing, store.lostReplies]).toEqual([0, 0]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => BigInt(i + 1)));
    expect(stateTrail(events)).toEqual(["run PENDING", "run RUNNING", "a RUNNING 1", "a SUCCEEDED 1", "b RUNNING 1", "b SUCCEEDED 1", "run SUCCEEDED"]);
    expect((await client.getRun({ runId })).run?.outputs["b.text"]?.value).toEqual({ case: "text", value: "slept: hi" });
  });

  it("re-runs the in-flight node of an abandoned run, and fails a run whose agents are gone with the reason", async () => {
    const client = await start();
    const submit = async () => {
      const runId = (await client.submitFlow({ source: flow(`[{id: s, agent: org.test.sleep, params: {ms: 100}}]`) })).run?.runId ?? "";
      while ((await client.getRun({ runId })).run?.nodes[0]?.state !== NodeState.RUNNING) await new Promise((r) => setTimeout(r, 20));
      return runId;
    };
    const resumable = await submit();
    const orphan = await submit();
    await orch.engine.close();
    const other = new TestOrchestrator({ store: orch.store });
    try {
      await other.register(manifests[2] as string);
      expect(await other.engine.adopt(resumable)).toBe(true);
      expect(stateTrail(await watchAll(other.client(), resumable)).slice(2)).toEqual([
        "s RUNNING 1",
        "s PENDING 1",
        "s RUNNING 2",
        "s SUCCEEDED 2",
        "run SUCCEEDED",
      ]);
    } finally {
      await other.engine.close();
    }
    const empty = new TestOrchestrator({ store: orch.store });
    try {
      expect(await empty.engine.adopt(orphan)).toBe(false);
      const run = (await empty.client().getRun({ runId: orphan })).run;
      expect([run?.state, run?.error]).toEqual([RunState.FAILED, 'cannot resume node "s": no agent "org.test.sleep" is registered']);
    } finally {
      await empty.engine.close();
    }
  });
});

describe("runs API", () => {
  it("resumes a watch after any sequence number", async () => {
    const client = await start();
    const runId = (await client.submitFlow({ source: flow(`[{id: a, agent: org.test.echo}]`), inputs: { "a.text": text("x") } })).run?.runId ?? "";
    const all = await watchAll(client, runId);
    const tail = await watchAll(client, runId, 3n);
    expect(tail.map((e) => e.seq)).toEqual(all.slice(3).map((e) => e.seq));
    expect(await watchAll(client, runId, BigInt(all.length))).toEqual([]);
    await expect(watchAll(client, runId, BigInt(all.length + 5))).rejects.toMatchObject({ code: Code.OutOfRange });
  });

  it("answers a repeated request_id with the same run and starts it once", async () => {
    const client = await start();
    const req = { source: flow(`[{id: a, agent: org.test.echo}]`), inputs: { "a.text": text("x") }, requestId: "req-42" };
    const [first, second] = await Promise.all([client.submitFlow(req), client.submitFlow(req)]);
    expect(second.run?.runId).toBe(first.run?.runId);
    const events = await watchAll(client, first.run?.runId ?? "");
    expect(stateTrail(events).filter((l) => l.startsWith("a RUNNING"))).toEqual(["a RUNNING 1"]);
  });

  it("rejects an invalid flow with every violation before anything runs or is stored", async () => {
    const client = await start();
    const err = ConnectError.from(
      await client
        .submitFlow({ source: flow(`[{id: a, agent: org.test.nope}, {id: b, agent: org.test.echo}]`, `[{from: b.text, to: b.text}]`) })
        .catch((e: unknown) => e),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    const rules = err
      .findDetails(ValidateFlowResponseSchema)[0]
      ?.violations.map((v) => v.rule)
      .sort();
    expect(rules).toEqual(["flow.acyclic", "node.agent_known"]);
    expect(err.message).toContain("node.agent_known");
    expect((await client.listRuns({})).runs).toEqual([]);
    const validated = await client.validateFlow({
      source: flow(`[{id: b, agent: org.test.echo}, {id: a, agent: org.test.echo}]`, `[{from: b.text, to: a.text}]`),
      inputs: { "b.text": text("x") },
    });
    expect([validated.valid, validated.topologicalOrder]).toEqual([true, ["b", "a"]]);
  });

  it("rejects backpressure on an edge that is not a stream with INVALID_ARGUMENT naming the field", async () => {
    const client = await start();
    const err = ConnectError.from(
      await client
        .submitFlow({
          source: flow(`[{id: b, agent: org.test.echo}, {id: a, agent: org.test.echo}]`, `[{from: b.text, to: a.text, backpressure: block}]`),
          inputs: { "b.text": text("x") },
        })
        .catch((e: unknown) => e),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.findDetails(ValidateFlowResponseSchema)[0]?.violations.map((v) => `${v.fieldPath} ${v.rule}`)).toEqual([
      "graph.edges[0].backpressure edge.backpressure_stream",
    ]);
    expect(err.message).toContain("only stream edges have backpressure");
    expect((await client.listRuns({})).runs).toEqual([]);
  });

  it("lists runs newest first, by state, page by page, only in the caller's workspace", async () => {
    const client = await start();
    const ids: string[] = [];
    for (const value of ["1", "2", "3"]) {
      const runId = (await client.submitFlow({ source: flow(`[{id: a, agent: org.test.echo}]`), inputs: { "a.text": text(value) } })).run?.runId ?? "";
      await watchAll(client, runId);
      ids.push(runId);
    }
    const failing = (await client.submitFlow({ source: flow(`[{id: a, agent: org.test.crash}]`) })).run?.runId ?? "";
    await watchAll(client, failing);
    const page1 = await client.listRuns({ pageSize: 2 });
    expect(page1.runs.map((r) => r.runId)).toEqual([failing, ids[2]]);
    expect(page1.runs[0]?.flow).toBeUndefined();
    const page2 = await client.listRuns({ pageSize: 2, pageToken: page1.nextPageToken });
    expect(page2.runs.map((r) => r.runId)).toEqual([ids[1], ids[0]]);
    expect(page2.nextPageToken).toBe("");
    expect((await client.listRuns({ states: [RunState.FAILED] })).runs.map((r) => r.runId)).toEqual([failing]);
    // The edge's protovalidate rules bound the filter (the in-process client here skips the interceptor).
    const check = messageValidator();
    const flood = create(ListRunsRequestSchema, { states: Array.from({ length: 20_000 }, () => RunState.FAILED) });
    expect(() => check(ListRunsRequestSchema, flood)).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument, message: expect.stringContaining("states") }),
    );

    const stranger = orch.client({ workspace: "ws-other", user: "mallory" });
    expect((await stranger.listRuns({})).runs).toEqual([]);
    for (const call of [() => stranger.getRun({ runId: failing }), () => stranger.cancelRun({ runId: failing }), () => watchAll(stranger, failing)]) {
      await expect(call()).rejects.toMatchObject({ code: Code.NotFound });
    }
  });

  it("accepts sidecar reports only from the node attempt's run token", async () => {
    const client = await start();
    const runId = (await client.submitFlow({ source: flow(`[{id: s, agent: org.test.sleep, params: {ms: 20000}}]`) })).run?.runId ?? "";
    while ((await client.getRun({ runId })).run?.nodes[0]?.state !== NodeState.RUNNING) await new Promise((r) => setTimeout(r, 20));
    const progress = create(AgentEventSchema, { event: { case: "progress", value: create(ProgressEventSchema, { percent: 42, message: "sidecar" }) } });
    const request = { runId, nodeId: "s", attempt: 1, events: [progress] };
    await expect(client.reportNodeEvents(request)).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(orch.client({ run: { runId, nodeId: "s", attempt: 2 } }).reportNodeEvents(request)).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(orch.client({ workspace: "ws-other", run: { runId, nodeId: "s", attempt: 1 } }).reportNodeEvents(request)).rejects.toMatchObject({
      code: Code.NotFound,
    });
    const sidecar = orch.client({ run: { runId, nodeId: "s", attempt: 1 } });
    expect((await sidecar.reportNodeEvents(request)).cancelled).toBe(false);
    expect((await client.getRun({ runId })).run?.nodes[0]?.progressPercent).toBe(42);
    await client.cancelRun({ runId });
    expect((await sidecar.reportNodeEvents(request)).cancelled).toBe(true);
  });

  it("finishes a run and lets it go when the store cannot release its lease (it lapses by itself)", async () => {
    // The store fails exactly this call, as Redis would if it went away after the run's last event was written.
    class LeaseStuckStore extends MemoryRunStore {
      override async releaseLease(): Promise<void> {
        throw new ConnectError("the run store is unavailable", Code.Unavailable);
      }
    }
    const client = await start({ store: new LeaseStuckStore() });
    const runId = (await client.submitFlow({ source: flow(`[{id: a, agent: org.test.echo}]`), inputs: { "a.text": text("hi") } })).run?.runId ?? "";
    await watchAll(client, runId);
    expect((await client.getRun({ runId })).run?.state).toBe(RunState.SUCCEEDED);
    await expect.poll(() => orch.engine.driverOf(runId)).toBeUndefined();
  });

  it("records each numbered event once per reporter, however often its report is sent", async () => {
    const client = await start();
    const runId = (await client.submitFlow({ source: flow(`[{id: s, agent: org.test.sleep, params: {ms: 20000}}]`) })).run?.runId ?? "";
    while ((await client.getRun({ runId })).run?.nodes[0]?.state !== NodeState.RUNNING) await new Promise((r) => setTimeout(r, 20));
    const sidecar = orch.client({ run: { runId, nodeId: "s", attempt: 1 } });
    const progress = (percent: number) => create(AgentEventSchema, { event: { case: "progress", value: create(ProgressEventSchema, { percent }) } });
    const report = (reporterId: string, firstEventSeq: bigint, ...percents: number[]) =>
      sidecar.reportNodeEvents({ runId, nodeId: "s", attempt: 1, reporterId, firstEventSeq, events: percents.map(progress) });
    await report("r1", 1n, 1, 2);
    await report("r1", 1n, 1, 2);
    await report("r1", 2n, 2, 3, 4);
    await report("r1", 1n, 1);
    await report("r2", 1n, 50);
    await report("", 0n, 60);
    await report("", 0n, 60);
    await client.cancelRun({ runId });
    const percents = (await watchAll(client, runId)).flatMap((e) =>
      e.event.case === "agent" && e.event.value.event.case === "progress" ? [e.event.value.event.value.percent] : [],
    );
    // Unnumbered reports (older sidecars) are recorded as they come.
    expect(percents).toEqual([1, 2, 3, 4, 50, 60, 60]);
  });
});

function pidFrom(events: readonly RunEvent[]): number {
  for (const e of events) {
    if (e.event.case === "agent" && e.event.value.event.case === "log") {
      const match = /sleeping, pid (\d+)/.exec(e.event.value.event.value.message);
      if (match) return Number(match[1]);
    }
  }
  throw new Error("the sleep agent never logged its pid");
}
