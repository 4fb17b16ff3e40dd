import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { type RunEvent, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { connectRedis } from "../shared/redis.js";
import { RedisRunStore } from "./redis-run-store.js";
import { stateTrail, TestOrchestrator, testAgentManifest, text } from "./testing.js";

// A run driven through a Redis kill -9: WatchRun and the unary calls answer UNAVAILABLE within the
// bound (REDIS_TIMEOUT_MS, here 1 s) while Redis is away, the run goes on, and a watcher resuming
// from its last seq sees every event once. A run whose data Redis lost ends its watch with DATA_LOSS.

const BOUND_MS = 1_000;
// How late past the bound a call may report on a loaded 2-core machine (timers, event loop).
const SLACK_MS = 600;
// ioredis reconnects every 500 ms at most; the first call after that must succeed.
const BACK_WITHIN_MS = 1_500;
const OUTAGE_MS = 2_000;

let redisServer: RedisServer | undefined;
let redis: Redis | undefined;
let orch: TestOrchestrator | undefined;
afterEach(async () => {
  await orch?.close();
  redis?.disconnect();
  await redisServer?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const errorOf = (err: unknown) => ConnectError.from(err);

describe("orchestrator when Redis fails mid-run", () => {
  it("WatchRun and GetRun answer UNAVAILABLE within the bound, work again once Redis is back, and the resumed watch misses nothing", async () => {
    redisServer = await startRedis({ persistence: true, appendfsync: "always" });
    redis = await connectRedis(redisServer.url, { user: "orchestrator", timeoutMs: BOUND_MS });
    orch = new TestOrchestrator({ store: await RedisRunStore.connect(redis, "faults:") });
    await orch.register(testAgentManifest("org.test.sleep", "sleep.mjs", "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]"));
    const client = orch.client();
    const flow = "kind: Flow\ngraph:\n  nodes: [{id: s, agent: org.test.sleep, params: {ms: 4000}}]\n  edges: []";
    const runId = (await client.submitFlow({ source: { source: { case: "text", value: flow } }, inputs: { "s.text": text("x") } })).run?.runId ?? "";

    const events: RunEvent[] = [];
    let killedAt = 0;
    const firstWatch = await (async () => {
      try {
        for await (const event of client.watchRun({ runId })) {
          events.push(event);
          // The agent has started and runs on for seconds: Redis goes while the run is live.
          if (event.nodeId === "s" && event.event.case === "nodeState" && !killedAt) {
            killedAt = Date.now();
            await redisServer?.kill();
          }
        }
        return undefined;
      } catch (err) {
        return errorOf(err);
      }
    })();
    expect(firstWatch?.code).toBe(Code.Unavailable);
    expect(Date.now() - killedAt).toBeLessThanOrEqual(BOUND_MS + SLACK_MS);

    const started = Date.now();
    expect(await client.getRun({ runId }).catch(errorOf)).toMatchObject({ code: Code.Unavailable });
    expect(await client.listRuns({}).catch(errorOf)).toMatchObject({ code: Code.Unavailable });
    expect(Date.now() - started).toBeLessThanOrEqual(2 * (BOUND_MS + SLACK_MS));

    await sleep(OUTAGE_MS);
    await redisServer.start();
    const backAt = Date.now();
    while ((await client.getRun({ runId }).catch(errorOf)) instanceof ConnectError) {
      expect(Date.now() - backAt).toBeLessThanOrEqual(BACK_WITHIN_MS);
      await sleep(20);
    }

    const resumed = (async () => {
      for await (const event of client.watchRun({ runId, afterSeq: events.at(-1)?.seq ?? 0n })) events.push(event);
    })();
    await Promise.race([resumed, sleep(15_000).then(() => Promise.reject(new Error("the run never finished after Redis came back")))]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => BigInt(i + 1)));
    expect(stateTrail(events)).toEqual(["run PENDING", "run RUNNING", "s RUNNING 1", "s SUCCEEDED 1", "run SUCCEEDED"]);
    const run = (await client.getRun({ runId })).run;
    expect(run?.state).toBe(RunState.SUCCEEDED);
    expect(run?.outputs["s.text"]?.value).toEqual({ case: "text", value: "slept: x" });
  });

  it("a run being watched whose data Redis lost (FLUSHALL under a live watch) ends the watch with DATA_LOSS, not a hang", async () => {
    redisServer = await startRedis();
    redis = await connectRedis(redisServer.url, { user: "orchestrator", timeoutMs: BOUND_MS });
    orch = new TestOrchestrator({ store: await RedisRunStore.connect(redis, "lost:") });
    await orch.register(testAgentManifest("org.test.sleep", "sleep.mjs", "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]"));
    const client = orch.client();
    const flow = "kind: Flow\ngraph:\n  nodes: [{id: s, agent: org.test.sleep, params: {ms: 3000}}]\n  edges: []";
    const runId = (await client.submitFlow({ source: { source: { case: "text", value: flow } }, inputs: { "s.text": text("x") } })).run?.runId ?? "";
    let flushedAt = 0;
    const outcome = await (async () => {
      try {
        for await (const event of client.watchRun({ runId })) {
          if (event.nodeId === "s" && event.event.case === "nodeState" && !flushedAt) {
            await redis?.flushall();
            flushedAt = Date.now();
          }
        }
        return undefined;
      } catch (err) {
        return errorOf(err);
      }
    })();
    expect(outcome?.code).toBe(Code.DataLoss);
    expect(outcome?.rawMessage).toContain(`the data of run "${runId}" was lost`);
    // Watches poll the store once a second when nothing happens.
    expect(Date.now() - flushedAt).toBeLessThanOrEqual(1_000 + BOUND_MS + SLACK_MS);
  });
});
