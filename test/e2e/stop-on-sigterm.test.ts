import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startEmbedded } from "../../services/mesh/embedded.js";
import { freePort, makeTempDir, portOpen, removeTempDir, spawnManaged, waitUntilReady, type ManagedProcess } from "../harness/index.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const graceMs = 3_000;
/** Beyond the grace period: the aborted handlers' last second, and the process exit itself. */
const exitMarginMs = 3_000;

/** Every process whose parent chain leads to `root`, read from /proc. */
function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat, after the parenthesised command name (which may hold spaces).
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // The process ended while we were listing.
    }
  }
  const found: number[] = [];
  const visit = (pid: number) => {
    for (const [child, parent] of parents) if (parent === pid) (found.push(child), visit(child));
  };
  visit(root);
  return found;
}

/** Gone, or a zombie waiting for a parent to reap it: either way it serves nothing. */
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** The user's own PATH, without the node_modules/.bin entries npm and vitest put first. */
const shellPath = (process.env.PATH ?? "")
  .split(delimiter)
  .filter((dir) => !dir.endsWith(join("node_modules", ".bin")))
  .join(delimiter);
const shellNode = execFileSync("node", ["--version"], { env: { PATH: shellPath }, encoding: "utf8" }).trim();

let started: ManagedProcess | undefined;
let tree: number[] = [];
let dataDir: string | undefined;
afterEach(async () => {
  // A failure leaves the very orphans it found: they must not outlive the test.
  for (const pid of tree.filter(alive)) process.kill(pid, "SIGKILL");
  await started?.terminate("SIGKILL");
  if (dataDir) removeTempDir(dataDir);
  started = dataDir = undefined;
  tree = [];
});

describe("SIGTERM to the outermost process stops the server within MENTATLAB_SHUTDOWN_GRACE_MS", () => {
  it.each([
    // Without its pre-script (the Node check and the web build, done before `start` runs, not part of
    // the process tree the signal meets), so the test leaves web/dist alone for the other tests.
    ["npm start", "npm", ["start", "--ignore-scripts"], process.env.PATH ?? ""],
    [`bin/mentatlab.mjs serve run from a shell (its node: ${shellNode})`, `${repo}bin/mentatlab.mjs`, ["serve"], shellPath],
  ])("%s", async (_launcher, command, args, path) => {
    dataDir = makeTempDir("sigterm-");
    const port = await freePort();
    started = spawnManaged(command, args, {
      cwd: repo,
      env: { PATH: path, HOME: process.env.HOME, PORT: String(port), MENTATLAB_DATA_DIR: dataDir, MENTATLAB_SHUTDOWN_GRACE_MS: String(graceMs) },
    });
    const outer = started;
    await waitUntilReady("the launched server", outer, () => portOpen(port), 45_000);
    tree = descendants(outer.pid);

    const signalledAt = Date.now();
    outer.child.kill("SIGTERM");
    const deadline = signalledAt + graceMs + exitMarginMs;
    while ((alive(outer.pid) || tree.some(alive) || (await portOpen(port))) && Date.now() < deadline) await sleep(50);

    expect(tree.filter(alive), `processes left running:\n${outer.output()}`).toEqual([]);
    expect(await portOpen(port)).toBe(false);
    expect(await outer.exited).toEqual({ code: 0, signal: null });
    expect(outer.output()).toContain("SIGTERM: shutting down gracefully");
    expect(Date.now() - signalledAt).toBeLessThan(graceMs + exitMarginMs);
  });

  it(`SIGTERM to bin/mentatctl.mjs run from a shell (its node: ${shellNode}) ends the CLI it runs`, async () => {
    dataDir = makeTempDir("sigterm-ctl-");
    const key = "mlk_sigterm_ctl_0123456789";
    const mesh = await startEmbedded({ port: 0, dataDir, env: { PATH: process.env.PATH, HOME: process.env.HOME, MENTATLAB_API_KEYS: `${key}=ctl@ws:admin` } });
    try {
      // `streams watch` runs until it is stopped.
      started = spawnManaged(`${repo}bin/mentatctl.mjs`, ["--url", mesh.url, "--key", key, "streams", "watch"], {
        cwd: repo,
        env: { PATH: shellPath, HOME: process.env.HOME },
      });
      const outer = started;
      const startedAt = Date.now();
      while (descendants(outer.pid).length === 0 && outer.running && Date.now() - startedAt < 10_000) await sleep(50);
      await sleep(1_000);
      expect(outer.running, outer.output()).toBe(true);
      tree = descendants(outer.pid);

      outer.child.kill("SIGTERM");
      const deadline = Date.now() + exitMarginMs;
      while ((alive(outer.pid) || tree.some(alive)) && Date.now() < deadline) await sleep(50);
      expect(tree.filter(alive), `processes left running:\n${outer.output()}`).toEqual([]);
      expect(alive(outer.pid)).toBe(false);
    } finally {
      await mesh.close();
    }
  });
});
