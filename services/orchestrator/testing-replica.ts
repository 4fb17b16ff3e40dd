// An orchestrator replica in its own process, for tests that kill one mid-run: Redis stores, the local
// executor, run recovery on, and the OrchestratorService on a loopback HTTP/1.1 port with every request
// acting as a fixed test principal. Prints `listening <port>` when ready.
// Env: REDIS_URL, REDIS_PREFIX, TOKEN_SECRET, LEASE_TTL_MS, RECOVERY_INTERVAL_MS.
import { createServer } from "node:http";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { OrchestratorService } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentCatalog } from "../registry/agent-catalog.js";
import { RedisAgentStore } from "../registry/redis-agent-store.js";
import { connectRedis } from "../shared/redis.js";
import { RunTokenSigner } from "../shared/run-token.js";
import { orchestratorConfigFromEnv } from "./config.js";
import { LocalExecutor } from "./local-executor.js";
import { createOrchestratorService } from "./orchestrator-service.js";
import { RedisRunStore } from "./redis-run-store.js";
import { RunEngine } from "./run-engine.js";
import { attachPrincipal, testPrincipal } from "../../test/support/in-memory.js";

const env = process.env;
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
  executor: new LocalExecutor({ killGraceMs: config.killGraceMs, memoryLimits: true, agentNiceIncrement: config.agentNiceIncrement, baseEnv: { PATH: env.PATH } }),
  streams: undefined,
  media: undefined,
  runTokens: new RunTokenSigner(env.TOKEN_SECRET ?? "replica-test-secret-0123"),
  config,
  recover: true,
});
const asTestUser = attachPrincipal(testPrincipal());
const server = createServer(
  connectNodeAdapter({ routes: (router) => router.service(OrchestratorService, createOrchestratorService({ store, catalog, engine })), interceptors: [asTestUser] }),
);
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`);
});
process.on("SIGTERM", () => {
  void engine.close().then(() => process.exit(0));
});
