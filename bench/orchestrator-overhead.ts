// Orchestrator scheduling overhead on a 1 000-node DAG of no-op agents (in-process NoopExecutor), per
// run-store backend, as a client sees it (SubmitFlow until WatchRun delivers the final event), against a baseline measured in the same process: a bare topological loop that runs
// the same no-op executor over the same DAG with no store, events, leases or edge processing.
// `npx tsx bench/orchestrator-overhead.ts`; BENCH_NODES (default 1000), BENCH_REPEATS (default 5),
// BENCH_CONCURRENCY (default 64), BENCH_BACKENDS (default "memory,redis"), REDIS_URL (default: a private redis-server).
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { calculateResources } from "../services/registry/resources.js";
import { checkFlow, type FlowPlan } from "../services/orchestrator/flow-validate.js";
import type { Executor } from "../services/orchestrator/executor.js";
import { MemoryRunStore } from "../services/orchestrator/memory-run-store.js";
import { NoopExecutor } from "../services/orchestrator/noop-executor.js";
import { RedisRunStore } from "../services/orchestrator/redis-run-store.js";
import type { RunStore } from "../services/orchestrator/run-store.js";
import { startRedis } from "../test/harness/index.js";
import { benchCatalog, benchOrchestrator, dagYaml, median, parsedFlow } from "./orchestrator-bench-support.js";

type Backend = "memory" | "redis";
const nodeCount = Number(process.env.BENCH_NODES ?? 1000);
const repeats = Number(process.env.BENCH_REPEATS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const backends = (process.env.BENCH_BACKENDS ?? "memory,redis").split(",") as Backend[];

/** The floor: the same no-op executor over the same DAG in topological order, one node at a time. */
async function baseline(plan: FlowPlan): Promise<number> {
  const executor: Executor = new NoopExecutor();
  const signal = new AbortController().signal;
  const started = performance.now();
  for (const id of plan.order) {
    const planned = plan.nodes.get(id);
    if (!planned) continue;
    const task = {
      runId: "r",
      nodeId: id,
      attempt: 1,
      workspace: "w",
      user: "u",
      agent: planned.manifest,
      params: {},
      inputs: {},
      outputStreams: {},
      resources: calculateResources(planned.manifest, 0),
      timeoutMs: 1000,
      runToken: "",
    };
    for await (const event of executor.execute(task, signal)) void event;
  }
  return performance.now() - started;
}

async function measure(store: RunStore, flowText: string): Promise<{ validateMs: number; runMs: number }> {
  const catalog = await benchCatalog();
  const orchestrator = benchOrchestrator(store, catalog, new NoopExecutor(), concurrency);
  try {
    const flow = parsedFlow(flowText);
    const validateStart = performance.now();
    await checkFlow(flow, {}, catalog);
    const validateMs = performance.now() - validateStart;
    return { validateMs, runMs: await orchestrator.run(flow) };
  } finally {
    await orchestrator.close();
  }
}

const flowText = dagYaml(nodeCount);
const plan = (await checkFlow(parsedFlow(flowText), {}, await benchCatalog())).plan;
if (!plan) throw new Error("bench DAG is invalid");
const edgeCount = [...plan.nodes.values()].reduce((sum, n) => sum + n.inputs.size, 0);
console.log(`DAG: ${nodeCount} nodes, ${edgeCount} edges, concurrency ${concurrency}, ${repeats} repeats (median)`);

let redisServer: Awaited<ReturnType<typeof startRedis>> | undefined;
for (const backend of backends) {
  const baselines: number[] = [];
  const runs: number[] = [];
  const validations: number[] = [];
  for (let i = 0; i < repeats + 1; i++) {
    let store: RunStore;
    let redis: Redis | undefined;
    if (backend === "redis") {
      const url = process.env.REDIS_URL ?? (redisServer ??= await startRedis()).url;
      redis = new Redis(url);
      store = await RedisRunStore.connect(redis, `bench:${Date.now()}:${i}:`);
    } else {
      store = new MemoryRunStore();
    }
    const base = await baseline(plan);
    const { validateMs, runMs } = await measure(store, flowText);
    await store.close();
    await redis?.quit();
    if (i === 0) continue; // warm-up
    baselines.push(base);
    runs.push(runMs);
    validations.push(validateMs);
  }
  const total = median(runs);
  const base = median(baselines);
  console.log(
    `${backend.padEnd(6)} submit→succeeded ${total.toFixed(1)} ms (${((total * 1000) / nodeCount).toFixed(1)} µs/node), ` +
      `validation ${median(validations).toFixed(1)} ms, baseline loop ${base.toFixed(1)} ms (${((base * 1000) / nodeCount).toFixed(1)} µs/node), ` +
      `overhead ${(total - base).toFixed(1)} ms = ${(total / base).toFixed(1)}× baseline; target ≤ 1000 ms: ${total - base <= 1000 ? "met" : "MISSED"}`,
  );
}
await redisServer?.stop();
