import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Caps local agents at their resource profile's CPU share with Linux control groups: each attempt
 * gets a cgroup below this process's own whose CFS quota is `cpuCores` of a core, so a busy flow
 * cannot take more than it asked for from live delivery (niceness only orders who runs first).
 *
 * Writing a cgroup needs a delegated, writable hierarchy (root in a container, or a systemd
 * delegation); where there is none, `detectCpuCaps` says why and agents run uncapped.
 */
export interface CpuCaps {
  /** Where the attempts' cgroups live. */
  readonly root: string;
  /**
   * Creates a cgroup capped at `cpuCores` and moves `pid` into it; what it starts stays inside. The
   * group's weight is that of a task at `nice`: a task's niceness counts only inside its group, so
   * without it the group would compete with the mesh as an equal.
   */
  confine(name: string, pid: number, limits: { readonly cpuCores: number; readonly nice: number }): CpuCap;
  /** Removes this process's cgroups (agents must have exited). */
  close(): void;
}

/** One attempt's cgroup. */
export interface CpuCap {
  /** The cgroup directory. */
  readonly path: string;
  /** Removes the cgroup once its processes have exited; a cgroup still busy is left to `close`. */
  release(): void;
}

/** The hierarchy kinds: cgroup v2 (`cpu.max`) and v1's cpu controller (`cpu.cfs_quota_us`). */
type Hierarchy = { readonly version: 1 | 2; readonly dir: string };

/** The CFS period quotas are expressed in, the kernel's default. */
const periodMicros = 100_000;
/** The kernel refuses quotas below 1 ms per period. */
const minQuotaMicros = 1_000;
const ownPrefix = "mentatlab-";
/** The scheduler's weight of a task at niceness 0 to 19 (the kernel's sched_prio_to_weight). */
const niceWeights = [1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15];
/** cgroup v2's cpu.weight for a task at niceness 0. */
const defaultV2Weight = 100;

export type CpuCapsDetection = { readonly caps: CpuCaps } | { readonly caps?: undefined; readonly reason: string };

/**
 * A writable CPU controller below this process's cgroup, or why there is none. `cgroupRoot` and
 * `selfCgroup` are the mount point and `/proc/self/cgroup`, parameters so tests can point elsewhere.
 */
export function detectCpuCaps(cgroupRoot = "/sys/fs/cgroup", selfCgroup = "/proc/self/cgroup"): CpuCapsDetection {
  if (process.platform !== "linux") return { reason: "control groups are Linux only" };
  let hierarchy: Hierarchy | undefined;
  try {
    hierarchy = findHierarchy(cgroupRoot, readFileSync(selfCgroup, "utf8"));
  } catch (err) {
    return { reason: `cannot read ${selfCgroup}: ${(err as Error).message}` };
  }
  if (!hierarchy) return { reason: `no cgroup hierarchy with a cpu controller under ${cgroupRoot}` };
  sweepStale(hierarchy.dir);
  const root = join(hierarchy.dir, `${ownPrefix}${process.pid}`);
  try {
    mkdirSync(root, { recursive: true });
    if (hierarchy.version === 2) writeFileSync(join(root, "cgroup.subtree_control"), "+cpu");
  } catch (err) {
    return {
      reason: `cannot create a cgroup in ${hierarchy.dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): it is not delegated to this user`,
    };
  }
  return { caps: cgroupCaps(hierarchy.version, root) };
}

function findHierarchy(cgroupRoot: string, selfCgroup: string): Hierarchy | undefined {
  for (const line of selfCgroup.split("\n")) {
    const [, controllers, path] = line.match(/^\d+:([^:]*):(.*)$/) ?? [];
    if (controllers === undefined || path === undefined) continue;
    if (controllers.split(",").includes("cpu")) return { version: 1, dir: join(cgroupRoot, "cpu", path) };
  }
  for (const line of selfCgroup.split("\n")) {
    const [, path] = line.match(/^0::(.*)$/) ?? [];
    if (path === undefined) continue;
    // A pure v2 machine mounts the unified hierarchy at the root; a hybrid one under `unified`.
    for (const mount of [cgroupRoot, join(cgroupRoot, "unified")]) {
      try {
        if (
          readFileSync(join(mount, path, "cgroup.controllers"), "utf8")
            .split(/\s+/)
            .includes("cpu")
        )
          return { version: 2, dir: join(mount, path) };
      } catch {
        // not mounted here
      }
    }
  }
  return undefined;
}

/** Removes the empty cgroups of orchestrators that are gone (a crash leaves them behind). */
function sweepStale(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir).filter((name) => name.startsWith(ownPrefix));
  } catch {
    return;
  }
  for (const name of entries) {
    const pid = Number(name.slice(ownPrefix.length));
    if (pid === process.pid || isAlive(pid)) continue;
    removeTree(join(dir, name));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** cgroup directories are removed bottom-up with rmdir; one with processes in it stays. */
function removeTree(dir: string): void {
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeTree(join(dir, entry.name));
    rmdirSync(dir);
  } catch {
    // busy or already gone: the next sweep tries again
  }
}

function cgroupCaps(version: 1 | 2, root: string): CpuCaps {
  return {
    root,
    confine(name, pid, { cpuCores, nice }) {
      const path = join(root, name.replace(/[^\w.-]/g, "_"));
      mkdirSync(path, { recursive: true });
      const quota = Math.max(minQuotaMicros, Math.round(cpuCores * periodMicros));
      const weight = niceWeights[Math.max(0, Math.min(niceWeights.length - 1, Math.round(nice)))] ?? niceWeights[0]!;
      if (version === 2) {
        writeFileSync(join(path, "cpu.max"), `${quota} ${periodMicros}`);
        writeFileSync(join(path, "cpu.weight"), String(Math.max(1, Math.round((weight * defaultV2Weight) / niceWeights[0]!))));
      } else {
        writeFileSync(join(path, "cpu.cfs_period_us"), String(periodMicros));
        writeFileSync(join(path, "cpu.cfs_quota_us"), String(quota));
        writeFileSync(join(path, "cpu.shares"), String(weight));
      }
      try {
        writeFileSync(join(path, "cgroup.procs"), String(pid));
      } catch (err) {
        // An agent that already exited cannot be moved; its exit status tells what happened.
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
      return { path, release: () => removeTree(path) };
    },
    close: () => removeTree(root),
  };
}
