import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { makeTempDir, removeTempDir, spawnManaged, waitUntilReady, type ManagedProcess } from "../../test/harness/index.js";

const cli = fileURLToPath(new URL("../cli/main.ts", import.meta.url));

let proc: ManagedProcess | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  await proc?.terminate("SIGTERM", 3_000);
  if (dataDir) removeTempDir(dataDir);
});

/** Starts `mentatlab serve storage` as an operator would and returns what it printed by the time it serves. */
async function startupOutput(env: Record<string, string>): Promise<string> {
  dataDir = makeTempDir("scanning-notice-");
  proc = spawnManaged(process.execPath, ["--import", "tsx", cli, "serve", "storage"], {
    env: {
      PATH: process.env.PATH,
      PORT: "0",
      MENTATLAB_DATA_DIR: dataDir,
      MENTATLAB_API_KEYS: "key-scanning-notice-0123=op@ws:admin",
      MENTATLAB_TOKEN_SECRET: "scanning-notice-token-secret-0123",
      MENTATLAB_PRESIGN_SECRET: "scanning-notice-presign-secret-0123",
      ...env,
    },
  });
  const started = proc;
  await waitUntilReady("mentatlab serve storage", started, async () => started.output().includes("serving on"));
  return started.output();
}

describe("the storage process's start-up log", () => {
  it("says in one line that uploads are not scanned when no clamd is configured", async () => {
    const lines = (await startupOutput({})).split("\n").filter((line) => line.includes("malware"));
    expect(lines).toEqual(["storage: uploads are NOT scanned for malware (set CLAMD_SOCKET or CLAMD_HOST to scan them with clamd)"]);
  });

  it("says in one line that uploads are scanned, and by which clamd, when one is configured", async () => {
    const lines = (await startupOutput({ CLAMD_HOST: "127.0.0.1", CLAMD_PORT: "3999" })).split("\n").filter((line) => line.includes("malware"));
    expect(lines).toEqual(["storage: uploads are scanned for malware by clamd at 127.0.0.1:3999; while it is unreachable uploads are refused"]);
  });
});
