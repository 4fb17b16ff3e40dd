import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeState, OrchestratorService, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { type ManagedProcess, type RedisServer, spawnManaged, startRedis } from "../../test/harness/index.js";
import { parseManifestText } from "../registry/manifest-parse.js";
import { RedisAgentStore } from "../registry/redis-agent-store.js";
import { RedisRunStore } from "./redis-run-store.js";
import { expectDead, stateTrail, testAgentManifest, text } from "./testing.js";

const prefix = `failover:${randomUUID()}:`;
let redisServer: RedisServer;
let redis: Redis;
let store: RedisRunStore;
const replicas: ManagedProcess[] = [];

async function startReplica(): Promise<{ process: ManagedProcess; port: number }> {
  const tsx = resolve(import.meta.dirname, "../../node_modules/tsx/dist/esm/index.mjs");
  const child = spawnManaged(process.execPath, ["--import", tsx, resolve(import.meta.dirname, "testing.ts")], {
    env: { PATH: process.env.PATH, REDIS_URL: redisServer.url, REDIS_PREFIX: prefix, LEASE_TTL_MS: "1000", RECOVERY_INTERVAL_MS: "200" },
  });
  replicas.push(child);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const port = /listening (\d+)/.exec(child.output())?.[1];
    if (port) return { process: child, port: Number(port) };
    if (!child.running || Date.now() > deadline) throw new Error(`replica did not start:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  store = await RedisRunStore.connect(redis, prefix);
  const agents = new RedisAgentStore(redis, prefix);
  for (const [id, script] of [
    ["org.test.sleep", "sleep.mjs"],
    ["org.test.echo", "echo.mjs"],
  ] as const) {
    const { manifest } = parseManifestText(testAgentManifest(id, script, "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]"));
    if (manifest) await agents.put(manifest);
  }
});
afterAll(async () => {
  await Promise.all(replicas.map((r) => r.terminate("SIGKILL")));
  await store.close();
  await redis.quit();
  await redisServer.stop();
});

describe("orchestrator failover with Redis", () => {
  it("finishes a run after the orchestrator process running it is killed, on exactly one surviving replica", async () => {
    const first = await startReplica();
    const client = createClient(OrchestratorService, createConnectTransport({ baseUrl: `http://127.0.0.1:${first.port}`, httpVersion: "1.1" }));
    const { run } = await client.submitFlow({
      source: {
        source: {
          case: "text",
          value:
            "kind: Flow\ngraph:\n  nodes: [{id: a, agent: org.test.sleep, params: {ms: 1500}}, {id: b, agent: org.test.echo, params: {suffix: '!'}}]\n  edges: [{from: a.text, to: b.text}]",
        },
      },
      inputs: { "a.text": text("x") },
    });
    const runId = run?.runId ?? "";
    let agentPid = 0;
    for (;;) {
      const events = await store.events(runId, 0n, 1000);
      const log = events.find(
        (e) => e.event.case === "agent" && e.event.value.event.case === "log" && e.event.value.event.value.message.startsWith("sleeping"),
      );
      if (log?.event.case === "agent" && log.event.value.event.case === "log") {
        agentPid = Number(/pid (\d+)/.exec(log.event.value.event.value.message)?.[1]);
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await first.process.terminate("SIGKILL");
    // The orphaned agent dies with its orchestrator (pdeathsig) instead of running on unobserved.
    await expectDead(agentPid);

    await Promise.all([startReplica(), startReplica()]);
    const deadline = Date.now() + 20_000;
    let finished = await store.get(runId);
    while (finished?.state !== RunState.SUCCEEDED && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      finished = await store.get(runId);
    }
    expect(finished?.state).toBe(RunState.SUCCEEDED);
    expect(finished?.outputs["b.text"]?.value.value).toBe("slept: x!");
    expect(finished?.nodes.map((n) => [n.nodeId, NodeState[n.state], n.attempt])).toEqual([
      ["a", "SUCCEEDED", 2],
      ["b", "SUCCEEDED", 1],
    ]);
    const events = await store.events(runId, 0n, 10_000);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => BigInt(i + 1)));
    expect(stateTrail(events)).toEqual([
      "run PENDING",
      "run RUNNING",
      "a RUNNING 1",
      "a PENDING 1",
      "a RUNNING 2",
      "a SUCCEEDED 2",
      "b RUNNING 1",
      "b SUCCEEDED 1",
      "run SUCCEEDED",
    ]);
  });
});
