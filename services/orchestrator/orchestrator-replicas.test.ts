import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentEventSchema, ProgressEventSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { NodeState, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { RedisRunStore } from "./redis-run-store.js";
import { stateTrail, TestOrchestrator, testAgentManifest, watchAll } from "./testing.js";

let server: RedisServer;
const connections: Redis[] = [];
let a: TestOrchestrator;
let b: TestOrchestrator;
beforeAll(async () => {
  server = await startRedis();
  const prefix = `replicas:${randomUUID()}:`;
  const store = async () => {
    const redis = new Redis(server.url);
    connections.push(redis);
    return RedisRunStore.connect(redis, prefix);
  };
  a = new TestOrchestrator({ store: await store() });
  b = new TestOrchestrator({ store: await store() });
  await a.register(testAgentManifest("org.test.sleep", "sleep.mjs", "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]"));
});
afterAll(async () => {
  await a.close();
  await b.close();
  await Promise.all(connections.map((c) => c.quit()));
  await server.stop();
});

describe("two orchestrator replicas on one Redis", () => {
  it("lets any replica watch, report to and cancel a run another replica drives", async () => {
    const runId =
      (await a.client().submitFlow({ source: { source: { case: "text", value: "graph: {nodes: [{id: s, agent: org.test.sleep, params: {ms: 20000}}]}" } } }))
        .run?.runId ?? "";
    const watcher = watchAll(b.client({ user: "bob" }), runId);
    const viaB = b.client();
    while ((await viaB.getRun({ runId })).run?.nodes[0]?.state !== NodeState.RUNNING) await new Promise((r) => setTimeout(r, 20));
    expect(b.engine.driverOf(runId)).toBeUndefined();

    const sidecar = b.client({ run: { runId, nodeId: "s", attempt: 1 } });
    const progress = create(AgentEventSchema, { event: { case: "progress", value: create(ProgressEventSchema, { percent: 37 }) } });
    expect((await sidecar.reportNodeEvents({ runId, nodeId: "s", attempt: 1, events: [progress] })).cancelled).toBe(false);
    const deadline = Date.now() + 2000;
    while ((await viaB.getRun({ runId })).run?.nodes[0]?.progressPercent !== 37 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await viaB.getRun({ runId })).run?.nodes[0]?.progressPercent).toBe(37);

    const started = Date.now();
    expect((await viaB.cancelRun({ runId, reason: "from b" })).run?.state).toBe(RunState.CANCELLED);
    const events = await watcher;
    expect(Date.now() - started).toBeLessThan(1000);
    expect(stateTrail(events).slice(-2)).toEqual(["s CANCELLED 1", "run CANCELLED"]);
    expect((await sidecar.reportNodeEvents({ runId, nodeId: "s", attempt: 1, events: [progress] })).cancelled).toBe(true);
  });
});
