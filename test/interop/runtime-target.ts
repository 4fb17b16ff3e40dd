import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, LOOPBACK, makeTempDir, removeTempDir, requireTool, spawnManaged, waitUntilReady, type ExitStatus } from "../harness/index.js";
import { keyEntries, keys, keysWorkspace } from "../mesh/support/callers.js";
import { storeInteropObject, type InteropTarget } from "./target.js";

/** The Fetch-API runtimes the embedded mesh runs on besides Node, each from its devDependency. */
export const fetchRuntimes = ["bun", "deno"] as const;
export type FetchRuntime = (typeof fetchRuntimes)[number];
/** Every runtime the embedded mesh has a documented start command for. */
export type MeshRuntime = "node" | FetchRuntime;

/** The package.json script that starts the embedded mesh on each runtime. */
const startScripts: Record<MeshRuntime, string> = { node: "start", bun: "serve:bun", deno: "serve:deno" };

const repo = fileURLToPath(new URL("../../", import.meta.url));

/**
 * The documented command (`npm start`, `npm run serve:<runtime>`), run without npm in between (so a
 * SIGTERM reaches the server), its binary from node_modules/.bin. A missing binary fails, saying how to get it.
 */
export function runtimeCommand(runtime: MeshRuntime): { command: string; args: string[] } {
  const scripts = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  const script = scripts[startScripts[runtime]];
  if (script === undefined) throw new Error(`package.json has no ${startScripts[runtime]} script`);
  const [binary, ...args] = script.replace(/^exec /, "").split(/\s+/);
  const hint = `run \`npm ci\`: the ${runtime} devDependency installs its binary from the npm registry`;
  return { command: requireTool(join(repo, "node_modules", ".bin", binary ?? runtime), hint), args };
}

/** The embedded mesh on a runtime, in a child process, with one key per role and one stored object. */
export interface RuntimeTarget extends InteropTarget {
  readonly runtime: MeshRuntime;
  /** The server's own process (no npm or shell in between), e.g. to read its CPU time. */
  readonly pid: number;
  /** The workspace the keys (and the stored object) belong to. */
  readonly workspace: string;
  /** Bearer keys of a multimodal consumer and producer of that workspace (`authorization` is the admin's). */
  readonly roleKeys: { readonly consumer: string; readonly producer: string };
  /** What the runtime printed so far. */
  output(): string;
  /** Sends SIGTERM and waits for the process to exit. */
  stop(): Promise<ExitStatus>;
}

/** How long the in-flight calls of a stopping target may run; a test waits past it for the exit. */
export const runtimeShutdownGraceMs = 2_000;

/**
 * Starts the mesh with the runtime's documented command on a free loopback port, ready once Health
 * answers over Connect; `env` adds settings (e.g. quotas).
 */
export async function startRuntimeTarget(
  runtime: MeshRuntime,
  options: { corsAllowedOrigins?: readonly string[]; env?: Readonly<Record<string, string>> } = {},
): Promise<RuntimeTarget> {
  const { command, args } = runtimeCommand(runtime);
  const port = await freePort();
  const dataDir = makeTempDir(`runtime-${runtime}`);
  const url = `http://${LOOPBACK}:${port}`;
  const child = spawnManaged(command, args, {
    cwd: repo,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      MENTATLAB_HOST: LOOPBACK,
      MENTATLAB_DATA_DIR: dataDir,
      MENTATLAB_API_KEYS: keyEntries.join(","),
      MENTATLAB_PRESIGN_SECRET: randomBytes(24).toString("hex"),
      MENTATLAB_CORS_ORIGINS: (options.corsAllowedOrigins ?? []).join(","),
      MENTATLAB_SHUTDOWN_GRACE_MS: String(runtimeShutdownGraceMs),
      ...options.env,
    },
  });
  await waitUntilReady(`the mesh on ${runtime}`, child, () => healthServing(url));
  const authorization = `Bearer ${keys.admin}`;
  const object = await storeInteropObject(url, authorization);
  const stop = async () => {
    const status = await child.terminate("SIGTERM", runtimeShutdownGraceMs + 10_000);
    removeTempDir(dataDir);
    return status;
  };
  return {
    runtime,
    pid: child.pid,
    url,
    port,
    authorization,
    workspace: keysWorkspace,
    roleKeys: { consumer: `Bearer ${keys.consumer}`, producer: `Bearer ${keys.producer}` },
    object,
    output: () => child.output(),
    stop,
    close: async () => {
      await stop();
    },
  };
}

/** Health.Check over Connect JSON, the way a load balancer's probe would call it. */
async function healthServing(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
      signal: AbortSignal.timeout(1_000),
    });
    return response.ok && ((await response.json()) as { status?: string }).status === "SERVING";
  } catch {
    return false;
  }
}
