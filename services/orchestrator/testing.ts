// Test support for the orchestrator: a whole orchestrator in memory (TestOrchestrator), the real storage
// and stream services beside it (RealServices), a replica in its own process (serveReplica), and helpers.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import { type Client, createClient, createRouterTransport, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { type PinValue, PinValueSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { OrchestratorService, type RunEvent } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { Authenticator } from "../shared/auth/authenticator.js";
import { authInterceptor } from "../shared/auth/interceptor.js";
import type { Principal } from "../shared/principal.js";
import { connectRedis } from "../shared/redis.js";
import { RunTokenSigner } from "../shared/run-token.js";
import { attachPrincipal, inMemoryClient, testPrincipal } from "../../test/support/in-memory.js";
import { AgentCatalog, createRegistryService, MemoryAgentStore, RedisAgentStore } from "../registry/index.js";
import { createStorage, type StorageRuntime, storageConfigFromEnv } from "../storage/index.js";
import { createStreams, type StreamRuntime, streamConfigFromEnv } from "../stream/index.js";
import { type OrchestratorConfig, orchestratorConfigFromEnv } from "./config.js";
import type { Executor } from "./executor.js";
import { LocalExecutor } from "./local-executor.js";
import type { MediaStore } from "./media-store.js";
import { MemoryRunStore } from "./memory-run-store.js";
import { createOrchestratorService } from "./orchestrator-service.js";
import { RedisRunStore } from "./redis-run-store.js";
import { RunEngine } from "./run-engine.js";
import type { RunStore } from "./run-store.js";
import type { StreamOpener } from "./stream-opener.js";

/** Absolute path of a test agent under test/agents/. */
export function testAgentPath(name: string): string {
  return resolve(import.meta.dirname, "../../test/agents", name);
}

/** A plain-contract test agent's manifest as YAML: `node test/agents/<script>`. */
export function testAgentManifest(id: string, script: string, pins: string, extra = ""): string {
  return `id: ${id}\nversion: 1.0.0\nruntime: node\ncommand: [${JSON.stringify(process.execPath)}, ${JSON.stringify(testAgentPath(script))}]\n${pins}\n${extra}`;
}

export interface TestOrchestratorOptions {
  readonly config?: Partial<OrchestratorConfig>;
  readonly executor?: Executor;
  readonly store?: RunStore;
  readonly media?: MediaStore;
  readonly streams?: StreamOpener;
}

/** A whole orchestrator over in-memory stores and real child processes, with clients for any principal. */
export class TestOrchestrator {
  readonly dataDir = mkdtempSync(join(tmpdir(), "orch-"));
  readonly config: OrchestratorConfig;
  readonly store: RunStore;
  readonly engine: RunEngine;
  readonly executor: Executor;
  readonly runTokens = new RunTokenSigner("test-secret-0123456789");
  private readonly registryImpl;
  /** The OrchestratorService itself, for a test gateway that serves it beside other services. */
  readonly orchestratorImpl;

  constructor(options: TestOrchestratorOptions = {}) {
    this.config = { ...orchestratorConfigFromEnv({}, this.dataDir), registryFile: undefined, killGraceMs: 500, ...options.config };
    this.store = options.store ?? new MemoryRunStore();
    const agents = new MemoryAgentStore();
    const catalog = new AgentCatalog(agents);
    this.executor =
      options.executor ??
      new LocalExecutor({
        killGraceMs: this.config.killGraceMs,
        memoryLimits: true,
        agentNiceIncrement: this.config.agentNiceIncrement,
        warmPool: { size: this.config.warmPoolSize, maxAttemptsPerWorker: this.config.warmPoolMaxAttempts },
        baseEnv: { PATH: process.env.PATH },
        hostPath: process.env.PATH,
        media: options.media,
      });
    this.engine = new RunEngine({
      store: this.store,
      catalog,
      executor: this.executor,
      streams: options.streams,
      media: options.media,
      runTokens: this.runTokens,
      config: this.config,
      recover: false,
    });
    this.registryImpl = createRegistryService(agents);
    this.orchestratorImpl = createOrchestratorService({ store: this.store, catalog, engine: this.engine });
  }

  client(principal: Partial<Principal> = {}, clientInterceptors: Interceptor[] = []): Client<typeof OrchestratorService> {
    return inMemoryClient(
      OrchestratorService,
      (router) => router.service(OrchestratorService, this.orchestratorImpl),
      testPrincipal(principal),
      clientInterceptors,
    );
  }

  registry(): Client<typeof AgentRegistryService> {
    return inMemoryClient(AgentRegistryService, (router) => router.service(AgentRegistryService, this.registryImpl), testPrincipal());
  }

  async register(...manifests: string[]): Promise<void> {
    const registry = this.registry();
    for (const text of manifests) await registry.registerAgent({ source: { source: { case: "text", value: text } } });
  }

  async close(): Promise<void> {
    await this.engine.close();
    await this.executor.close?.();
    await this.store.close();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export function text(value: string): PinValue {
  return create(PinValueSchema, { value: { case: "text", value } });
}

/** Every event of a run until its final one. */
export async function watchAll(client: Client<typeof OrchestratorService>, runId: string, afterSeq = 0n): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  for await (const event of client.watchRun({ runId, afterSeq })) events.push(event);
  return events;
}

/** Waits up to 3 s for the agent process `pid` to be gone, e.g. after its run was cancelled; throws if it lives on. */
export async function expectDead(pid: number): Promise<void> {
  const deadline = Date.now() + 3000;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > deadline) throw new Error(`agent ${pid} is still alive 3 s later`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One line per state change, e.g. `a RUNNING 1` or `run SUCCEEDED`, for asserting on order. */
export function stateTrail(events: readonly RunEvent[]): string[] {
  return events.flatMap((e) => {
    if (e.event.case === "nodeState") return [`${e.nodeId} ${nodeStateName(e.event.value.state)} ${e.event.value.attempt}`];
    if (e.event.case === "runState") return [`run ${runStateName(e.event.value.state)}`];
    return [];
  });
}

const nodeStates = ["UNSPECIFIED", "PENDING", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"];
const runStates = ["UNSPECIFIED", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];
export const nodeStateName = (state: number): string => nodeStates[state] ?? String(state);
export const runStateName = (state: number): string => runStates[state] ?? String(state);

/**
 * The real StorageService and StreamService (file-backed, in memory) behind the real auth interceptor,
 * for orchestrator tests: calls carrying a node's run token act as that node, as in production.
 */
export class RealServices {
  readonly storage: Client<typeof StorageService>;
  readonly streams: Client<typeof StreamService>;

  private constructor(
    private readonly dir: string,
    private readonly storageRuntime: StorageRuntime,
    private readonly streamRuntime: StreamRuntime,
    runTokens: RunTokenSigner,
  ) {
    const interceptors = [authInterceptor(new Authenticator([], runTokens), new Set())];
    this.storage = createClient(
      StorageService,
      createRouterTransport((r) => r.service(StorageService, storageRuntime.impl), { router: { interceptors } }),
    );
    this.streams = createClient(
      StreamService,
      createRouterTransport((r) => r.service(StreamService, streamRuntime.impl), { router: { interceptors } }),
    );
  }

  static async start(runTokens: RunTokenSigner): Promise<RealServices> {
    const dir = mkdtempSync(join(tmpdir(), "orch-services-"));
    const storage = await createStorage(storageConfigFromEnv({ MENTATLAB_PRESIGN_SECRET: "orchestrator-test-presign", STORAGE_SWEEP_INTERVAL_MS: "0" }, dir));
    const streams = await createStreams(streamConfigFromEnv({}));
    return new RealServices(dir, storage, streams, runTokens);
  }

  async close(): Promise<void> {
    await this.streamRuntime.close();
    await this.storageRuntime.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * An orchestrator replica, for tests that kill one mid-run: Redis stores, the local executor, run
 * recovery on, and the OrchestratorService on a loopback HTTP/1.1 port with every request acting as a
 * fixed test principal. Prints `listening <port>` when ready. Run this file as a script to start one
 * (`node --import tsx services/orchestrator/testing.ts`), configured by REDIS_URL, REDIS_PREFIX,
 * TOKEN_SECRET, LEASE_TTL_MS and RECOVERY_INTERVAL_MS.
 */
export async function serveReplica(env: NodeJS.ProcessEnv): Promise<void> {
  const prefix = env.REDIS_PREFIX ?? "replica-test:";
  const config = {
    ...orchestratorConfigFromEnv({ ORCHESTRATOR_REGISTRY_FILE: "none" }, "/nonexistent"),
    redisUrl: env.REDIS_URL ?? "",
    redisKeyPrefix: prefix,
    leaseTtlMs: Number(env.LEASE_TTL_MS ?? 1000),
    recoveryIntervalMs: Number(env.RECOVERY_INTERVAL_MS ?? 250),
    killGraceMs: 200,
  };
  const redis = await connectRedis(config.redisUrl, { user: "orchestrator", timeoutMs: config.redisTimeoutMs });
  const store = await RedisRunStore.connect(redis, prefix);
  const catalog = new AgentCatalog(new RedisAgentStore(redis, prefix));
  const engine = new RunEngine({
    store,
    catalog,
    executor: new LocalExecutor({
      killGraceMs: config.killGraceMs,
      memoryLimits: true,
      agentNiceIncrement: config.agentNiceIncrement,
      baseEnv: { PATH: env.PATH },
      hostPath: env.PATH,
    }),
    streams: undefined,
    media: undefined,
    runTokens: new RunTokenSigner(env.TOKEN_SECRET ?? "replica-test-secret-0123"),
    config,
    recover: true,
  });
  const asTestUser = attachPrincipal(testPrincipal());
  const server = createServer(
    connectNodeAdapter({
      routes: (router) => router.service(OrchestratorService, createOrchestratorService({ store, catalog, engine })),
      interceptors: [asTestUser],
    }),
  );
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`);
  });
  process.on("SIGTERM", () => {
    void engine.close().then(() => process.exit(0));
  });
}

if (process.argv[1] === import.meta.filename) await serveReplica(process.env);
