import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { LOOPBACK, makeTempDir, spawnManaged } from "../../test/harness/index.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const tsx = join(repoRoot, "node_modules", ".bin", "tsx");

let holder: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (holder ? holder.close(() => resolve()) : resolve()));
  holder = undefined;
});

async function busyPort(): Promise<number> {
  holder = createServer();
  await new Promise<void>((resolve) => holder!.listen(0, LOOPBACK, resolve));
  const address = holder.address();
  if (address === null || typeof address === "string") throw new Error("holder has no TCP address");
  return address.port;
}

/** Runs `mentatlab serve` with `env` added and returns its exit code and stderr once it exits. */
async function serveUntilExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const serve = spawnManaged(tsx, ["services/cli/main.ts", "serve"], { cwd: repoRoot, env: { ...process.env, ...env } });
  let stderr = "";
  serve.child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const status = await Promise.race([
    serve.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running:\n${serve.output()}`)), 30_000)),
  ]);
  return { code: status.code, stderr };
}

it("mentatlab serve with a bad setting says so in one line naming the variable, and exits 1", async () => {
  const { code, stderr } = await serveUntilExit({ PORT: "abc", MENTATLAB_DATA_DIR: makeTempDir("bad-port") });
  expect(code).toBe(1);
  expect(stderr).toBe('mentatlab: PORT must be a port number (0-65535), not "abc"\n');
}, 40_000);

it.each([
  [
    { MENTATLAB_API_KEYS: "too-short=ann@acme:admin" },
    "mentatlab: MENTATLAB_API_KEYS must be KEY=USER@WORKSPACE:ROLE[+ROLE...] entries: invalid API keys in MENTATLAB_API_KEYS: key for ann@acme is shorter than 16 characters\n",
  ],
  [{ MENTATLAB_TOKEN_SECRET: "short" }, "mentatlab: MENTATLAB_TOKEN_SECRET must be at least 16 characters: it has 5\n"],
])(
  "mentatlab serve with a bad secret names the variable in one line without echoing the secret (%o)",
  async (env, expected) => {
    const { code, stderr } = await serveUntilExit({ ...env, MENTATLAB_DATA_DIR: makeTempDir("bad-secret") });
    expect(code).toBe(1);
    expect(stderr).toBe(expected);
  },
  40_000,
);

// `npm start` runs exactly this command (after building the web UI).
it("npm start on a port already in use says so in one line naming PORT, and exits 1", async () => {
  const port = await busyPort();
  const { code, stderr } = await serveUntilExit({ PORT: String(port), MENTATLAB_DATA_DIR: makeTempDir("busy-port") });
  expect(code).toBe(1);
  expect(stderr).toBe(
    `mentatlab: cannot listen on ${LOOPBACK}:${port}: the port is already in use; stop what holds it or set PORT to a free port (PORT=0 picks any)\n`,
  );
}, 40_000);
