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

// `npm start` runs exactly this command (after building the web UI).
it("npm start on a port already in use says so in one line naming PORT, and exits 1", async () => {
  const port = await busyPort();
  const serve = spawnManaged(tsx, ["services/cli/main.ts", "serve"], {
    cwd: repoRoot,
    env: { ...process.env, PORT: String(port), MENTATLAB_DATA_DIR: makeTempDir("busy-port") },
  });
  let stderr = "";
  serve.child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const status = await Promise.race([
    serve.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running:\n${serve.output()}`)), 30_000)),
  ]);
  expect(status.code).toBe(1);
  expect(stderr).toBe(
    `mentatlab: cannot listen on ${LOOPBACK}:${port}: the port is already in use; stop what holds it or set PORT to a free port (PORT=0 picks any)\n`,
  );
}, 40_000);
