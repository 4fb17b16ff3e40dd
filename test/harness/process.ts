import { type ChildProcess, spawn, type SpawnOptions } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooksInstalled = false;

// "exit" listeners do not run when the test process is SIGKILLed (OOM, a runner's hard timeout),
// and daemons such as redis-server and clamd do not notice their parent dying. A tiny reaper
// process holds a pipe from us; when that pipe closes for any reason it kills what we registered.
const REAPER_SOURCE = `
const { rmSync } = require("node:fs");
const pids = new Set();
const dirs = new Set();
let pending = "";
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => {});
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  pending += chunk;
  let nl;
  while ((nl = pending.indexOf("\\n")) !== -1) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    const arg = line.slice(2);
    if (line[0] === "p") (line[1] === "+" ? pids.add(Number(arg)) : pids.delete(Number(arg)));
    if (line[0] === "d") (line[1] === "+" ? dirs.add(arg) : dirs.delete(arg));
  }
});
process.stdin.on("close", () => {
  for (const pid of pids) { try { process.kill(pid, "SIGKILL"); } catch {} }
  for (const dir of dirs) { try { rmSync(dir, { recursive: true, force: true }); } catch {} }
  process.exit(0);
});
`;
let reaper: ChildProcess | undefined;

function tellReaper(line: string): void {
  if (reaper === undefined) {
    reaper = spawn(process.execPath, ["-e", REAPER_SOURCE], { stdio: ["pipe", "ignore", "ignore"] });
    reaper.on("error", () => {
      reaper = undefined;
    });
    // If the reaper is gone, the in-process exit hooks still clean up; a write error must not crash tests.
    reaper.stdin?.on("error", () => {});
    // The reaper must never keep the test process alive.
    reaper.unref();
    (reaper.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
  reaper.stdin?.write(`${line}\n`);
}

// Synchronous on purpose: "exit" listeners cannot await, and a half-finished cleanup leaves
// daemons holding ports after the test run.
function reapEverything(): void {
  for (const child of liveChildren) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort on the way out
    }
  }
  tempDirs.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", reapEverything);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      reapEverything();
      // A listener disables the default "terminate"; restore it unless someone else (the test
      // runner) has taken charge of this signal.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/** A temp dir removed by the caller, and in any case when the test process exits. */
export function makeTempDir(prefix: string): string {
  installExitHooks();
  const dir = mkdtempSync(join(tmpdir(), `mentatlab-${prefix}-`));
  tempDirs.add(dir);
  tellReaper(`d+${dir}`);
  return dir;
}

export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  tellReaper(`d-${dir}`);
  rmSync(dir, { recursive: true, force: true });
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  readonly running: boolean;
  /** The last 64 KiB of stdout and stderr, for error messages. */
  output(): string;
  /** Sends `signal`, escalates to SIGKILL after `graceMs`, resolves once the process is gone. */
  terminate(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitStatus>;
}

const OUTPUT_LIMIT = 64 * 1024;

export function spawnManaged(
  command: string,
  args: readonly string[],
  options: Omit<SpawnOptions, "stdio" | "detached"> & { stdin?: "ignore" | "pipe" } = {},
): ManagedProcess {
  installExitHooks();
  const { stdin = "ignore", ...spawnOptions } = options;
  const child = spawn(command, args, { ...spawnOptions, stdio: [stdin, "pipe", "pipe"] });
  let tail = "";
  const append = (chunk: Buffer): void => {
    tail += chunk.toString("utf8");
    if (tail.length > OUTPUT_LIMIT) tail = tail.slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  // A test that forgets stop() must not hang its process: the exit hooks and the reaper clean up.
  // terminate() takes the reference back while it waits, so a graceful stop is not cut short.
  const holdLoop = (hold: boolean): void => {
    for (const handle of [child, child.stdin, child.stdout, child.stderr] as const) {
      const h = handle as unknown as { ref?: () => void; unref?: () => void } | null;
      if (hold) h?.ref?.();
      else h?.unref?.();
    }
  };
  holdLoop(false);
  let running = true;
  const pid = child.pid;
  if (pid !== undefined) tellReaper(`p+${pid}`);
  const forget = (): void => {
    // Forgetting promptly keeps the reaper from killing an unrelated process that reuses the pid.
    if (pid !== undefined) tellReaper(`p-${pid}`);
  };
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("error", (err) => {
      append(Buffer.from(`spawn ${command} failed: ${err.message}\n`));
      running = false;
      liveChildren.delete(child);
      forget();
      resolve({ code: null, signal: null });
    });
    child.once("exit", (code, signal) => {
      running = false;
      liveChildren.delete(child);
      forget();
      resolve({ code, signal });
    });
  });
  liveChildren.add(child);

  return {
    child,
    get pid() {
      return child.pid ?? -1;
    },
    exited,
    get running() {
      return running;
    },
    output: () => tail,
    async terminate(signal = "SIGTERM", graceMs = 10_000) {
      if (!running) return exited;
      holdLoop(true);
      child.kill(signal);
      const timer = setTimeout(() => {
        if (running) child.kill("SIGKILL");
      }, graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Polls `probe` until it is true. Fails fast with the process output if the process dies first,
 * so a broken config reads as a config error instead of a timeout.
 */
export async function waitUntilReady(what: string, proc: ManagedProcess, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    if (!proc.running) {
      const status = await proc.exited;
      throw new Error(`${what} exited before it was ready (code ${status.code}, signal ${status.signal}):\n${proc.output()}`);
    }
    if (await probe()) return;
    if (Date.now() > deadline) {
      await proc.terminate("SIGKILL");
      throw new Error(`${what} was not ready after ${timeoutMs} ms:\n${proc.output()}`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
}
