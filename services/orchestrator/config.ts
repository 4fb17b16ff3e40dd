import { join } from "node:path";
import { databaseFileFromEnv } from "../shared/sqlite.js";
import { redisTimeoutMsFromEnv } from "../shared/redis.js";
import { choiceVar, integerVar, numberVar, type Env } from "../shared/env.js";
import { type KubernetesExecutorConfig, kubernetesExecutorConfigFromEnv } from "./kubernetes/config.js";

/** Orchestrator (and agent registry) settings; every field has a default so the embedded runtime needs none. */
export interface OrchestratorConfig {
  /** `MENTATLAB_REDIS_URL` (or `REDIS_URL`): runs, leases and agents in Redis when set; in memory when empty. */
  readonly redisUrl: string;
  /** `ORCHESTRATOR_REDIS_PREFIX`, default `mentatlab:`: prefix of every Redis key. */
  readonly redisKeyPrefix: string;
  /** `MENTATLAB_DATABASE`, default `<dataDir>/mentatlab.db`: without Redis, runs and agents live in this SQLite file; undefined (`memory`, or Redis set) keeps them elsewhere. */
  readonly databaseFile: string | undefined;
  /** `REDIS_TIMEOUT_MS`, default 2000: longest any call waits on Redis before it answers UNAVAILABLE. */
  readonly redisTimeoutMs: number;
  /** `ORCHESTRATOR_REGISTRY_FILE`, default `<dataDir>/agents.json`: the registry's JSON file with `MENTATLAB_DATABASE=memory` (`none` keeps it in memory only); an embedded database imports it once. */
  readonly registryFile: string | undefined;
  /** `ORCHESTRATOR_MAX_CONCURRENT_NODES`, default 8: node attempts running at once in this process, across runs. */
  readonly maxConcurrentNodes: number;
  /** `ORCHESTRATOR_NODE_TIMEOUT_SECONDS`, default 600: per-attempt timeout for nodes that set none. */
  readonly defaultNodeTimeoutMs: number;
  /** `ORCHESTRATOR_INLINE_THRESHOLD_BYTES`, default 262144: binary values above this are offloaded to storage. */
  readonly inlineThresholdBytes: number;
  /** `ORCHESTRATOR_LEASE_TTL_MS`, default 5000: a replica's claim on a run expires this long after its last renewal. */
  readonly leaseTtlMs: number;
  /** `ORCHESTRATOR_RECOVERY_INTERVAL_MS`, default 2000: how often a replica looks for unowned unfinished runs (Redis only). */
  readonly recoveryIntervalMs: number;
  /** `ORCHESTRATOR_KILL_GRACE_MS`, default 2000: between SIGTERM and SIGKILL of a cancelled agent's process group. */
  readonly killGraceMs: number;
  /** `ORCHESTRATOR_MEMORY_LIMITS`, default true: cap agents' memory at their resolved resources. */
  readonly memoryLimits: boolean;
  /** `ORCHESTRATOR_AGENT_NICE`, default 10: niceness local agents run at above the orchestrator's own (capped at 19); 0 keeps the mesh's priority. */
  readonly agentNiceIncrement: number;
  /** `ORCHESTRATOR_WARM_POOL_SIZE`, default 1: warm workers kept started per long_running agent whose manifest gives no warm_pool.size (docs/warm-agents.md); 0 runs them cold. */
  readonly warmPoolSize: number;
  /** `ORCHESTRATOR_WARM_POOL_MAX_ATTEMPTS`, default 100: attempts a warm worker serves before a fresh one replaces it, unless the manifest says. */
  readonly warmPoolMaxAttempts: number;
  /** `ORCHESTRATOR_AGENT_CPU_CAPS`, default `auto`: hold local agents to their resources' CPU share with cgroups where this process may write them (`auto`), always (`on`: start fails without), or never (`off`). */
  readonly agentCpuCaps: "auto" | "on" | "off";
  /** `ORCHESTRATOR_AGENT_ENV`, default `PATH,HOME,LANG,TZ,TMPDIR`: orchestrator variables passed through to local agents. */
  readonly agentEnvPassthrough: readonly string[];
  /** `ORCHESTRATOR_FINISHED_RUN_TTL_SECONDS`, default 604800 (7 days): Redis and the embedded database keep a finished run this long. */
  readonly finishedRunTtlSeconds: number;
  /** `ORCHESTRATOR_CACHE_TTL_SECONDS`, default 86400 (1 day): how long the node cache keeps a node's outputs (docs/reuse.md). */
  readonly cacheTtlSeconds: number;
  /** `ORCHESTRATOR_MEMORY_MAX_FINISHED_RUNS`, default 1000: the in-memory store keeps this many finished runs. */
  readonly memoryMaxFinishedRuns: number;
  /** `ORCHESTRATOR_EXECUTOR`, default `local`: `local` child processes, `kubernetes` Jobs, or `noop` (finishes every node at once; benchmarks). */
  readonly executor: "local" | "noop" | "kubernetes";
  /** The `MENTATLAB_K8S_*` / `MENTATLAB_SIDECAR_IMAGE` settings, read only when the executor is `kubernetes`. */
  readonly kubernetes: KubernetesExecutorConfig | undefined;
}

export function orchestratorConfigFromEnv(env: Env, dataDir: string): OrchestratorConfig {
  const registryFile = env.ORCHESTRATOR_REGISTRY_FILE ?? join(dataDir, "agents.json");
  const executor = choiceVar(env, "ORCHESTRATOR_EXECUTOR", ["local", "kubernetes", "noop"], "local");
  const redisUrl = env.MENTATLAB_REDIS_URL ?? env.REDIS_URL ?? "";
  return {
    redisUrl,
    databaseFile: redisUrl ? undefined : databaseFileFromEnv(env, dataDir),
    redisKeyPrefix: env.ORCHESTRATOR_REDIS_PREFIX ?? "mentatlab:",
    redisTimeoutMs: redisTimeoutMsFromEnv(env),
    registryFile: registryFile === "none" ? undefined : registryFile,
    maxConcurrentNodes: numberVar(env, "ORCHESTRATOR_MAX_CONCURRENT_NODES", 8, { exclusiveMin: 0 }),
    defaultNodeTimeoutMs: numberVar(env, "ORCHESTRATOR_NODE_TIMEOUT_SECONDS", 600, { exclusiveMin: 0 }) * 1000,
    inlineThresholdBytes: numberVar(env, "ORCHESTRATOR_INLINE_THRESHOLD_BYTES", 256 * 1024, { exclusiveMin: 0 }),
    leaseTtlMs: numberVar(env, "ORCHESTRATOR_LEASE_TTL_MS", 5000, { exclusiveMin: 0 }),
    recoveryIntervalMs: numberVar(env, "ORCHESTRATOR_RECOVERY_INTERVAL_MS", 2000, { exclusiveMin: 0 }),
    killGraceMs: numberVar(env, "ORCHESTRATOR_KILL_GRACE_MS", 2000, { exclusiveMin: 0 }),
    memoryLimits: (env.ORCHESTRATOR_MEMORY_LIMITS ?? "true") !== "false",
    agentNiceIncrement: integerVar(env, "ORCHESTRATOR_AGENT_NICE", 10, { max: 19 }),
    warmPoolSize: integerVar(env, "ORCHESTRATOR_WARM_POOL_SIZE", 1, { max: 64 }),
    warmPoolMaxAttempts: integerVar(env, "ORCHESTRATOR_WARM_POOL_MAX_ATTEMPTS", 100, { min: 1 }),
    agentCpuCaps: choiceVar(env, "ORCHESTRATOR_AGENT_CPU_CAPS", ["auto", "on", "off"], "auto"),
    agentEnvPassthrough: (env.ORCHESTRATOR_AGENT_ENV ?? "PATH,HOME,LANG,TZ,TMPDIR")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    finishedRunTtlSeconds: numberVar(env, "ORCHESTRATOR_FINISHED_RUN_TTL_SECONDS", 7 * 24 * 3600, { exclusiveMin: 0 }),
    cacheTtlSeconds: numberVar(env, "ORCHESTRATOR_CACHE_TTL_SECONDS", 24 * 3600, { exclusiveMin: 0 }),
    memoryMaxFinishedRuns: numberVar(env, "ORCHESTRATOR_MEMORY_MAX_FINISHED_RUNS", 1000, { exclusiveMin: 0 }),
    executor,
    kubernetes: executor === "kubernetes" ? kubernetesExecutorConfigFromEnv(env) : undefined,
  };
}
