import { fileURLToPath } from "node:url";
import {
  freePort,
  LOOPBACK,
  makeTempDir,
  portOpen,
  removeTempDir,
  s3Env,
  spawnManaged,
  startRedis,
  startS3,
  waitUntilReady,
  type ManagedProcess,
} from "../../harness/index.js";
import type { MeshUnderTest } from "./clients.js";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const cli = `${repo}services/cli/main.ts`;

type Part = "storage" | "stream" | "orchestrator" | "gateway";

/** The distributed mesh: Redis, the S3 server, and one process per service plus the gateway. */
export interface DistributedMesh extends MeshUnderTest {
  /** Base URL of one service process, bypassing the gateway. */
  urlOf(part: Exclude<Part, "gateway">): string;
  /** SIGKILLs the gateway process, as a crash would. */
  killGateway(): Promise<void>;
  /** Starts the gateway again on the same port. */
  startGateway(): Promise<void>;
}

/**
 * Starts every part as its own `mentatlab serve <part>` process, sharing Redis (streams, runs, quotas,
 * caches) and the S3 server (objects), configured only through the environment. `options.extraEnv`
 * adds to that environment; `options.moreApiKeys` are further `KEY=USER@WORKSPACE:ROLE` entries, for
 * tests that need other roles.
 */
export async function startDistributedMesh(
  apiKey: string,
  options: { readonly extraEnv?: Readonly<Record<string, string>>; readonly moreApiKeys?: readonly string[] } = {},
): Promise<DistributedMesh> {
  const { extraEnv = {}, moreApiKeys = [] } = options;
  const [redis, s3] = await Promise.all([startRedis(), startS3()]);
  const dataDir = makeTempDir("e2e-distributed-");
  const ports = { storage: await freePort(), stream: await freePort(), orchestrator: await freePort(), gateway: await freePort() };
  const url = (part: Part) => `http://${LOOPBACK}:${ports[part]}`;
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    MENTATLAB_DATA_DIR: dataDir,
    MENTATLAB_API_KEYS: [`${apiKey}=dave@ws-dist:admin`, ...moreApiKeys].join(","),
    MENTATLAB_TOKEN_SECRET: "e2e-distributed-token-secret-0123",
    MENTATLAB_PRESIGN_SECRET: "e2e-distributed-presign-secret-0123",
    MENTATLAB_SHUTDOWN_GRACE_MS: "500",
    REDIS_URL: redis.url,
    ...s3Env(s3),
    MENTATLAB_STORAGE_URL: url("storage"),
    MENTATLAB_STREAM_URL: url("stream"),
    MENTATLAB_ORCHESTRATOR_URL: url("orchestrator"),
    MENTATLAB_GATEWAY_URL: url("gateway"),
    ...extraEnv,
  };
  const processes = new Map<Part, ManagedProcess>();
  const start = async (part: Part) => {
    // Node itself with tsx as a loader, not the tsx wrapper: a SIGKILL must reach the server, not a launcher.
    const proc = spawnManaged(process.execPath, ["--import", "tsx", cli, "serve", part], { cwd: repo, env: { ...env, PORT: String(ports[part]) } });
    processes.set(part, proc);
    await waitUntilReady(`mentatlab serve ${part}`, proc, () => portOpen(ports[part]));
  };
  await Promise.all((["storage", "stream", "orchestrator"] as const).map(start));
  await start("gateway");
  return {
    url: url("gateway"),
    apiKey,
    urlOf: (part) => url(part),
    async killGateway() {
      await processes.get("gateway")?.terminate("SIGKILL");
    },
    startGateway: () => start("gateway"),
    async close() {
      await Promise.all([...processes.values()].map((proc) => proc.terminate("SIGTERM", 3_000)));
      await Promise.all([redis.stop(), s3.stop()]);
      removeTempDir(dataDir);
    },
  };
}
