// The node cache on a 1 000-node DAG (docs/reuse.md): a flow submitted again with every node a cache
// hit, submit→succeeded as a client sees it, per run-store backend, against a baseline measured in the
// same process and store: the same DAG with the cache off, every node run by the in-process no-op
// executor (so the baseline holds no agent start-up at all; with real agents a hit also saves a process
// or pod start per node). Fails if a cached run starts a single agent.
// `npx tsx bench/node-cache.ts`; BENCH_NODES (default 1000), BENCH_REPEATS (default 5),
// BENCH_CONCURRENCY (default 64), BENCH_BACKENDS (default "memory,sqlite,redis"), REDIS_URL (default: a private redis-server).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { CacheMode } from "../gen/mentatlab/v1/orchestrator_pb.js";
import type { Executor, ExecutorEvent, NodeTask } from "../services/orchestrator/executor.js";
import { MemoryRunStore } from "../services/orchestrator/memory-run-store.js";
import { NoopExecutor } from "../services/orchestrator/noop-executor.js";
import { RedisRunStore } from "../services/orchestrator/redis-run-store.js";
import type { RunStore } from "../services/orchestrator/run-store.js";
import { SqliteRunStore } from "../services/orchestrator/sqlite-run-store.js";
import { openDatabase } from "../services/shared/sqlite.js";
import { startRedis } from "../test/harness/index.js";
import { benchCatalog, benchOrchestrator, dagYaml, median, parsedFlow } from "./orchestrator-bench-support.js";

type Backend = "memory" | "sqlite" | "redis";
const nodeCount = Number(process.env.BENCH_NODES ?? 1000);
const repeats = Number(process.env.BENCH_REPEATS ?? 5);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const backends = (process.env.BENCH_BACKENDS ?? "memory,sqlite,redis").split(",") as Backend[];

/** The no-op executor, counting the attempts it is asked to run: a cached node must never get here. */
class CountingExecutor implements Executor {
  started = 0;
  private readonly inner = new NoopExecutor();
  execute(task: NodeTask): AsyncIterable<ExecutorEvent> {
    this.started += 1;
    return this.inner.execute(task);
  }
}

// Numbered nodes: each has its own key, so the first run fills the cache with 1 000 entries.
const flow = parsedFlow(dagYaml(nodeCount, true));
const catalog = await benchCatalog(true);
const dataDir = mkdtempSync(join(tmpdir(), "bench-node-cache-"));
let redisServer: Awaited<ReturnType<typeof startRedis>> | undefined;
console.log(`DAG: ${nodeCount} nodes, concurrency ${concurrency}, ${repeats} repeats (median)`);

for (const backend of backends) {
  let redis: Redis | undefined;
  let store: RunStore;
  if (backend === "redis") {
    redis = new Redis(process.env.REDIS_URL ?? (redisServer ??= await startRedis()).url);
    store = await RedisRunStore.connect(redis, `bench-cache:${Date.now()}:`);
  } else if (backend === "sqlite") {
    store = new SqliteRunStore(openDatabase(join(dataDir, "bench.db")), 3600);
  } else {
    store = new MemoryRunStore();
  }
  const executor = new CountingExecutor();
  const orchestrator = benchOrchestrator(store, catalog, executor, concurrency);
  const fill = await orchestrator.run(flow, CacheMode.WRITE);
  const uncached: number[] = [];
  const cached: number[] = [];
  for (let i = 0; i < repeats + 1; i++) {
    const off = await orchestrator.run(flow, CacheMode.OFF);
    const before = executor.started;
    const hit = await orchestrator.run(flow);
    if (executor.started !== before) throw new Error(`a fully cached run started ${executor.started - before} agent(s)`);
    if (i === 0) continue; // warm-up
    uncached.push(off);
    cached.push(hit);
  }
  await orchestrator.close();
  await store.close();
  await redis?.quit();
  const hit = median(cached);
  const base = median(uncached);
  console.log(
    `${backend.padEnd(6)} cached submit→succeeded ${hit.toFixed(1)} ms (${((hit * 1000) / nodeCount).toFixed(1)} µs/node, 0 agents started), ` +
      `cache off ${base.toFixed(1)} ms (${((base * 1000) / nodeCount).toFixed(1)} µs/node): ${(hit / base).toFixed(2)}× the uncached run; ` +
      `first run filling the cache ${fill.toFixed(1)} ms`,
  );
}
await redisServer?.stop();
rmSync(dataDir, { recursive: true, force: true });
