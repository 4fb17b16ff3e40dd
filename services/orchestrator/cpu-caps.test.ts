import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { jsonOf } from "../../agent-contract/pin-values.js";
import { type CpuCaps, detectCpuCaps } from "./cpu-caps.js";
import { LocalExecutor } from "./local-executor.js";
import { TestOrchestrator, testAgentManifest, watchAll } from "./testing.js";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "cgroup-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe("finding a cgroup to write", () => {
  it("uses cgroup v1's cpu controller below this process's own group", () => {
    const root = tempDir();
    mkdirSync(join(root, "cpu", "svc"), { recursive: true });
    writeFileSync(join(root, "self"), "4:memory:/svc\n1:cpu,cpuacct:/svc\n0::/\n");
    const detected = detectCpuCaps(root, join(root, "self"));
    expect(detected.caps?.root).toBe(join(root, "cpu", "svc", `mentatlab-${process.pid}`));
    const cap = detected.caps!.confine("run-1.n/x.1", 4242, { cpuCores: 0.25, nice: 10 });
    expect(cap.path).toBe(join(detected.caps!.root, "run-1.n_x.1"));
    expect(readFileSync(join(cap.path, "cpu.cfs_quota_us"), "utf8")).toBe("25000");
    expect(readFileSync(join(cap.path, "cpu.cfs_period_us"), "utf8")).toBe("100000");
    expect(readFileSync(join(cap.path, "cgroup.procs"), "utf8")).toBe("4242");
    // Weighted as a task at nice 10 is, so the group yields to the mesh as the niced agent would.
    expect(readFileSync(join(cap.path, "cpu.shares"), "utf8")).toBe("110");
  });

  it("uses cgroup v2's cpu.max where the unified hierarchy has the cpu controller", () => {
    const root = tempDir();
    mkdirSync(join(root, "user.slice"), { recursive: true });
    writeFileSync(join(root, "user.slice", "cgroup.controllers"), "cpuset cpu io memory pids");
    writeFileSync(join(root, "self"), "0::/user.slice\n");
    const caps = detectCpuCaps(root, join(root, "self")).caps!;
    expect(readFileSync(join(caps.root, "cgroup.subtree_control"), "utf8")).toBe("+cpu");
    const cap = caps.confine("a", 7, { cpuCores: 2, nice: 19 });
    expect(readFileSync(join(cap.path, "cpu.max"), "utf8")).toBe("200000 100000");
    expect(readFileSync(join(cap.path, "cpu.weight"), "utf8")).toBe("1");
  });

  it("says why when no hierarchy has a cpu controller", () => {
    const root = tempDir();
    mkdirSync(join(root, "unified"));
    writeFileSync(join(root, "unified", "cgroup.controllers"), "memory pids");
    writeFileSync(join(root, "self"), "4:memory:/\n0::/\n");
    expect(detectCpuCaps(root, join(root, "self"))).toEqual({ reason: `no cgroup hierarchy with a cpu controller under ${root}` });
  });

  it("removes the groups an orchestrator that is gone left behind, and its own on close", () => {
    const root = tempDir();
    const stale = join(root, "cpu", "mentatlab-999999999", "run.n.1");
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(root, "self"), "1:cpu:/\n");
    const caps = detectCpuCaps(root, join(root, "self")).caps!;
    expect(existsSync(join(root, "cpu", "mentatlab-999999999"))).toBe(false);
    caps.close();
    expect(existsSync(caps.root)).toBe(false);
  });
});

describe("agents held to their CPU share on this machine", () => {
  /** The real control groups; the suite runs where they can be written (as root in the CI container). */
  function realCaps(): CpuCaps {
    const detected = detectCpuCaps();
    if (!detected.caps) {
      throw new Error(
        `agent CPU caps need a writable cgroup cpu controller: ${detected.reason}. Run the tests as root (as .ci/run does) or delegate a cgroup to this user`,
      );
    }
    cleanups.push(() => detected.caps.close());
    return detected.caps;
  }

  it("runs a CPU-bound agent inside its own cgroup, at no more than its resources' share", async () => {
    const caps = realCaps();
    const orch = new TestOrchestrator({
      executor: new LocalExecutor({
        killGraceMs: 500,
        memoryLimits: true,
        agentNiceIncrement: 10,
        baseEnv: { PATH: process.env.PATH },
        hostPath: process.env.PATH,
        cpuCaps: caps,
      }),
    });
    cleanups.push(() => orch.close());
    await orch.register(testAgentManifest("org.test.burn", "cpu-burn.mjs", "outputs: [{name: usage, type: json}]", "resources: {cpu: 200m}"));
    const client = orch.client();
    const source = {
      case: "text" as const,
      value: "apiVersion: v1\nkind: Flow\nmeta: {id: burn}\ngraph:\n  nodes: [{id: b, agent: org.test.burn, params: {ms: 1500}}]\n  edges: []",
    };
    const runId = (await client.submitFlow({ source: { source } })).run?.runId ?? "";
    await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    expect(run?.state, run?.error).toBe(RunState.SUCCEEDED);
    const value = run?.outputs["b.usage"]?.value;
    const usage = (value?.case === "json" ? jsonOf(value.value) : {}) as { share: number; cgroup: string; weight: number };
    expect(usage.cgroup).toBe(`${caps.root.replace(/^\/sys\/fs\/cgroup\/(cpu|unified)?/, "")}/${runId}.b.1`);
    // 200m is a fifth of a core; the CFS quota is enforced per 100 ms period.
    expect(usage.share).toBeLessThan(0.3);
    // Weighted below a nice-0 task (v1 shares 1024, v2 weight 100), as the agent's niceness asks.
    expect(usage.weight).toBeGreaterThan(0);
    expect(usage.weight).toBeLessThan(caps.root.includes("/cpu/") ? 1024 : 100);
    // The attempt's group goes once its processes have exited.
    expect(existsSync(join(caps.root, `${runId}.b.1`))).toBe(false);
  });
});
