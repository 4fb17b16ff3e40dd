/**
 * OrchestratorService and the AgentRegistryService it owns: flows validated and run by the run engine
 * over a run store (memory, SQLite, Redis), node attempts on an executor (local child processes,
 * no-op, or Kubernetes Jobs from `kubernetes/`), values passed along edges through storage and streams.
 * `mesh-module.ts` mounts it for services/mesh.
 *
 * @example
 * ```ts
 * import { createOrchestrator, orchestratorConfigFromEnv } from "../orchestrator/index.js";
 *
 * const orchestrator = await createOrchestrator(orchestratorConfigFromEnv(env, dataDir), {
 *   storage, // Client<typeof StorageService>
 *   streams, // Client<typeof StreamService>
 *   runTokens, // RunTokenSigner
 *   hostEnv: process.env, // at the composition root
 * });
 * router.service(OrchestratorService, orchestrator.orchestratorImpl);
 * router.service(AgentRegistryService, orchestrator.registryImpl);
 * ```
 */
import type { DatabaseSync } from "node:sqlite";
import type { Client, ServiceImpl } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import type { OrchestratorService } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import type { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import type { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import type { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { AgentCatalog, type AgentStore, createRegistryService, MemoryAgentStore, RedisAgentStore, SqliteAgentStore } from "../registry/index.js";
import type { Env } from "../shared/env.js";
import { connectRedis } from "../shared/redis.js";
import type { RunTokenSigner } from "../shared/run-token.js";
import { ConfigError } from "../shared/env.js";
import { once, openDatabase } from "../shared/sqlite.js";
import type { OrchestratorConfig } from "./config.js";
import { type CpuCaps, detectCpuCaps } from "./cpu-caps.js";
import type { Executor } from "./executor.js";
import { LocalExecutor } from "./local-executor.js";
import { storageMediaStore } from "./media-store.js";
import { MemoryRunStore } from "./memory-run-store.js";
import { OrchestratorMetrics } from "./metrics.js";
import { NoopExecutor } from "./noop-executor.js";
import { createOrchestratorService } from "./orchestrator-service.js";
import { RedisRunStore } from "./redis-run-store.js";
import { RunEngine } from "./run-engine.js";
import type { RunStore } from "./run-store.js";
import { SqliteRunStore } from "./sqlite-run-store.js";
import { streamServiceOpener } from "./stream-opener.js";

export type { Executor, ExecutorEvent, ExecutionOutcome, NodeTask } from "./executor.js";
export { orchestratorConfigFromEnv, type OrchestratorConfig } from "./config.js";
export { OrchestratorMetrics } from "./metrics.js";

export interface OrchestratorDeps {
  readonly storage: Client<typeof StorageService>;
  readonly streams: Client<typeof StreamService>;
  /** Defaults to the executor named by the config (local child processes). */
  readonly executor?: Executor;
  readonly runTokens: RunTokenSigner;
  /** Where agents' sidecars reach the gateway (MENTATLAB_GATEWAY_URL for local agents). */
  readonly gatewayUrl?: string;
  /**
   * The environment of the process (`process.env`, from the composition root): local agents inherit the
   * variables `config.agentEnvPassthrough` names from it, and its PATH is searched for setpriv and prlimit.
   */
  readonly hostEnv: Env;
}

export interface OrchestratorRuntime {
  readonly registryImpl: ServiceImpl<typeof AgentRegistryService>;
  readonly orchestratorImpl: ServiceImpl<typeof OrchestratorService>;
  /** Counters for `processing_duration_seconds`. */
  readonly metrics: OrchestratorMetrics;
  /** Stops driving runs (agents are stopped; with Redis another replica resumes them) and closes connections. */
  close(): Promise<void>;
}

/**
 * The orchestrator process's two services over shared stores: in the embedded database by default,
 * in Redis when `redisUrl` is set, in memory (agents optionally persisted to a JSON file) when the
 * database is turned off. With Redis or the database, unfinished runs that no live process holds are
 * adopted, so runs outlive a crash or a restart.
 */
export async function createOrchestrator(config: OrchestratorConfig, deps: OrchestratorDeps): Promise<OrchestratorRuntime> {
  let agents: AgentStore;
  let runs: RunStore;
  let redis: Redis | undefined;
  let db: DatabaseSync | undefined;
  if (config.redisUrl) {
    redis = await connectRedis(config.redisUrl, { user: "orchestrator", timeoutMs: config.redisTimeoutMs });
    agents = new RedisAgentStore(redis, config.redisKeyPrefix);
    runs = await RedisRunStore.connect(redis, config.redisKeyPrefix, config.finishedRunTtlSeconds);
  } else if (config.databaseFile) {
    db = openDatabase(config.databaseFile);
    agents = await embeddedAgentStore(db, config.registryFile);
    runs = new SqliteRunStore(db, config.finishedRunTtlSeconds);
  } else {
    agents = new MemoryAgentStore(config.registryFile);
    runs = new MemoryRunStore(config.memoryMaxFinishedRuns);
  }
  const media = storageMediaStore(deps.storage);
  const cpuCaps = deps.executor || config.kubernetes || config.executor === "noop" ? undefined : agentCpuCaps(config.agentCpuCaps);
  const executor: Executor =
    deps.executor ??
    (config.kubernetes
      ? // Loaded only when selected: the Kubernetes client adds ~0.6 s to every embedded start otherwise.
        (await import("./kubernetes/index.js")).createKubernetesExecutor(config.kubernetes)
      : config.executor === "noop"
        ? new NoopExecutor()
        : new LocalExecutor({
            media,
            killGraceMs: config.killGraceMs,
            memoryLimits: config.memoryLimits,
            agentNiceIncrement: config.agentNiceIncrement,
            warmPool: { size: config.warmPoolSize, maxAttemptsPerWorker: config.warmPoolMaxAttempts },
            ...(cpuCaps ? { cpuCaps } : {}),
            ...(deps.gatewayUrl ? { gatewayUrl: deps.gatewayUrl } : {}),
            baseEnv: Object.fromEntries(config.agentEnvPassthrough.map((name) => [name, deps.hostEnv[name]])),
            hostPath: deps.hostEnv.PATH,
          }));
  const catalog = new AgentCatalog(agents);
  const metrics = new OrchestratorMetrics();
  const engine = new RunEngine({
    store: runs,
    catalog,
    executor,
    streams: streamServiceOpener(deps.streams),
    media,
    runTokens: deps.runTokens,
    config,
    // Durable stores outlive this process: runs it or a crashed predecessor left unfinished are adopted.
    recover: Boolean(config.redisUrl || db),
    metrics,
  });
  return {
    registryImpl: createRegistryService(agents),
    orchestratorImpl: createOrchestratorService({ store: runs, catalog, engine }),
    metrics,
    async close() {
      await engine.close();
      await executor.close?.();
      await runs.close();
      await agents.close();
      await redis?.quit();
      db?.close();
      cpuCaps?.close();
    },
  };
}

/** The agents table of the embedded database; a registry file kept before it existed is imported once. */
async function embeddedAgentStore(db: DatabaseSync, registryFile: string | undefined): Promise<SqliteAgentStore> {
  const store = new SqliteAgentStore(db);
  if (registryFile) {
    await once(db, "agents: import the registry file", async () => {
      for (const manifest of await new MemoryAgentStore(registryFile).list("")) await store.put(manifest);
    });
  }
  return store;
}

/** CPU caps for local agents as configured, with the start-up line that says whether they hold. */
function agentCpuCaps(mode: OrchestratorConfig["agentCpuCaps"]): CpuCaps | undefined {
  if (mode === "off") return undefined;
  const detected = detectCpuCaps();
  if (detected.caps) {
    console.info(`orchestrator: local agents are held to their CPU share (cgroups in ${detected.caps.root})`);
    return detected.caps;
  }
  if (mode === "on") throw new ConfigError("ORCHESTRATOR_AGENT_CPU_CAPS", "auto or off on this machine", mode, detected.reason);
  console.info(`orchestrator: local agents are NOT held to their CPU share (${detected.reason}); they run niced (ORCHESTRATOR_AGENT_NICE)`);
  return undefined;
}
