// Orchestrator scheduling overhead on a 1 000-node DAG of no-op agents (in-process NoopExecutor), per
// run-store backend, as a client sees it (SubmitFlow until WatchRun delivers the final event), against a baseline measured in the same process: a bare topological loop that runs
// the same no-op executor over the same DAG with no store, events, leases or edge processing.
// `npx tsx bench/orchestrator-overhead.ts`; BENCH_NODES (default 1000), BENCH_REPEATS (default 5),
// BENCH_CONCURRENCY (default 64), BENCH_BACKENDS (default "memory,redis"), REDIS_URL (default: a private redis-server).
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { OrchestratorService, RunState } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentCatalog } from "../services/registry/agent-catalog.js";
import { parseManifestText } from "../services/registry/manifest-parse.js";
import { MemoryAgentStore } from "../services/registry/memory-agent-store.js";
import { calculateResources } from "../services/registry/resources.js";
import { orchestratorConfigFromEnv } from "../services/orchestrator/config.js";
import { parseFlowText } from "../services/orchestrator/flow-parse.js";
import { checkFlow, type FlowPlan } from "../services/orchestrator/flow-validate.js";
import type { Executor } from "../services/orchestrator/executor.js";
import { MemoryRunStore } from "../services/orchestrator/memory-run-store.js";
import { NoopExecutor } from "../services/orchestrator/noop-executor.js";
import { createOrchestratorService } from "../services/orchestrator/orchestrator-service.js";
import { RedisRunStore } from "../services/orchestrator/redis-run-store.js";
import { RunEngine } from "../services/orchestrator/run-engine.js";
import type { RunStore } from "../services/orchestrator/run-store.js";
import { RunTokenSigner } from "../services/shared/run-token.js";
import { startRedis } from "../test/harness/index.js";
import { inMemoryClient } from "../test/support/in-memory.js";

type Backend = "memory" | "redis";
const nodeCount = Number(process.env.BENCH_NODES ?? 1000);
const repeats = Number(process.env.BENCH_REPEATS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const backends = (process.env.BENCH_BACKENDS ?? "memory,redis").split(",") as Backend[];

/** Each node takes up to two earlier nodes as inputs (deterministic LCG), so the DAG has long chains and wide fan-out. */
function dagYaml(n: number): string {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const nodes: string[] = [];
  const edges: string[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push(`{id: n${i}, agent: org.bench.noop}`);
    if (i === 0) continue;
    const a = Math.floor(next() * i);
    edges.push(`{from: n${a}.out, to: n${i}.a}`);
    const b = Math.floor(next() * i);
    if (b !== a && next() < 0.5) edges.push(`{from: n${b}.out, to: n${i}.b}`);
  }
  return `kind: Flow\ngraph:\n  nodes: [${nodes.join(", ")}]\n  edges: [${edges.join(", ")}]`;
}

const { manifest } = parseManifestText("{id: org.bench.noop, version: 1.0.0, command: [true], inputs: [{name: a, type: json}, {name: b, type: json}], outputs: [{name: out, type: json}]}");
if (!manifest) throw new Error("bench manifest does not parse");
const benchManifest = manifest;
const runTokens = new RunTokenSigner("bench-secret-0123456789");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** The floor: the same no-op executor over the same DAG in topological order, one node at a time. */
async function baseline(plan: FlowPlan): Promise<number> {
  const executor: Executor = new NoopExecutor();
  const signal = new AbortController().signal;
  const started = performance.now();
  for (const id of plan.order) {
    const planned = plan.nodes.get(id);
    if (!planned) continue;
    const task = { runId: "r", nodeId: id, attempt: 1, workspace: "w", user: "u", agent: planned.manifest, params: {}, inputs: {}, outputStreams: {}, resources: calculateResources(planned.manifest, 0), timeoutMs: 1000, runToken: "" };
    for await (const event of executor.execute(task, signal)) void event;
  }
  return performance.now() - started;
}

async function measure(store: RunStore, flowText: string): Promise<{ validateMs: number; runMs: number }> {
  const agents = new MemoryAgentStore();
  await agents.put(benchManifest);
  const catalog = new AgentCatalog(agents);
  const config = { ...orchestratorConfigFromEnv({ ORCHESTRATOR_REGISTRY_FILE: "none" }, "/nonexistent"), maxConcurrentNodes: concurrency };
  const engine = new RunEngine({ store, catalog, executor: new NoopExecutor(), streams: undefined, media: undefined, runTokens, config, recover: false });
  const client = inMemoryClient(OrchestratorService, (router) => router.service(OrchestratorService, createOrchestratorService({ store, catalog, engine })));
  try {
    const flow = parseFlowText(flowText).flow;
    if (!flow) throw new Error("bench flow does not parse");
    const validateStart = performance.now();
    await checkFlow(flow, {}, catalog);
    const validateMs = performance.now() - validateStart;
    const started = performance.now();
    const { run } = await client.submitFlow({ source: { source: { case: "flow", value: flow } } });
    let final = RunState.UNSPECIFIED;
    for await (const event of client.watchRun({ runId: run?.runId ?? "" })) {
      if (event.event.case === "runState") final = event.event.value.state;
    }
    if (final !== RunState.SUCCEEDED) throw new Error(`bench run ended ${RunState[final]}`);
    const runMs = performance.now() - started;
    return { validateMs, runMs };
  } finally {
    await engine.close();
  }
}

const flowText = dagYaml(nodeCount);
const planAgents = new MemoryAgentStore();
await planAgents.put(benchManifest);
const parsedFlow = parseFlowText(flowText).flow;
const plan = parsedFlow && (await checkFlow(parsedFlow, {}, new AgentCatalog(planAgents))).plan;
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
