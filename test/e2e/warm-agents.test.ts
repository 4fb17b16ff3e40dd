import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { stateTrail } from "../../services/orchestrator/testing.js";
import { meshClients, type MeshClients } from "./support/clients.js";
import { startEmbeddedMesh, type EmbeddedMeshUnderTest } from "./support/embedded-mesh.js";
import { failureOf, followRun, oneNodeFlow } from "./support/runs.js";

/** A long_running SDK agent that takes MODEL_LOAD_MS to start, logging its starts and exits to `log`. */
function warmManifest(id: string, log: string, warmPool: string): string {
  return [
    `id: ${id}`,
    "version: 1.0.0",
    "runtime: node",
    "long_running: true",
    `warm_pool: ${warmPool}`,
    "inputs: [{name: text, type: text, required: true}]",
    "outputs: [{name: text, type: text}]",
    `env: {WARM_LOG: ${JSON.stringify(log)}, MODEL_LOAD_MS: "300"}`,
    "command: [node, --import, tsx, agent-sidecar/main.ts, --, node, --import, tsx, test/e2e/agents/warm-model/agent.ts]",
  ].join("\n");
}

/** The `start <pid>` and `exit <pid> <code>` lines the agent processes wrote. */
async function processLog(path: string): Promise<{ starts: number[]; exits: Map<number, number> }> {
  const lines = (await readFile(path, "utf8").catch(() => "")).split("\n").filter(Boolean);
  const starts = lines.filter((l) => l.startsWith("start ")).map((l) => Number(l.split(" ")[1]));
  const exits = new Map(lines.filter((l) => l.startsWith("exit ")).map((l) => [Number(l.split(" ")[1]), Number(l.split(" ")[2])] as const));
  return { starts, exits };
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let waited = 0; waited < 30_000; waited += 50) {
    if (await condition()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Runs `agent` on `text` and returns the pid of the process that answered. */
async function runOnce(clients: MeshClients, agent: string, text: string, params?: Record<string, unknown>, retry = "") {
  const flow = oneNodeFlow("warm", { id: "w", agent, ...(params ? { params } : {}) }).replace(`agent: ${agent}`, `agent: ${agent}${retry}`);
  const { run: submitted } = await clients.orchestrator.submitFlow({
    source: { source: { case: "text", value: flow } },
    inputs: { "w.text": { value: { case: "text", value: text } } },
  });
  const { run, events } = await followRun(clients, submitted?.runId ?? "");
  expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);
  const answer = run.outputs["w.text"]?.value;
  const pid = Number(/from (\d+)$/.exec(answer?.case === "text" ? answer.value : "")?.[1]);
  return { pid, events, run };
}

describe("warm agents: long_running agents served by pre-started workers (local executor)", () => {
  let mesh: EmbeddedMeshUnderTest;
  let clients: MeshClients;
  beforeAll(async () => {
    mesh = await startEmbeddedMesh("e2e-warm-", "mlk_e2e_warm_0123456789", "dana@ws-warm");
    clients = meshClients(mesh);
  });
  afterAll(() => mesh?.close());

  const register = (text: string) => clients.registry.registerAgent({ source: { source: { case: "text", value: text } } });

  it("serves attempts from the pool's workers without starting a process per attempt", async () => {
    const log = join(mesh.scratchDir, "hit.log");
    await register(warmManifest("org.test.warm.hit", log, "{size: 2}"));
    const pids: number[] = [];
    for (const text of ["a", "b", "c", "d"]) pids.push((await runOnce(clients, "org.test.warm.hit", text)).pid);
    const { starts } = await processLog(log);
    // Two workers were started for the pool, and nothing else: four attempts, no process of their own.
    expect(starts).toHaveLength(2);
    for (const pid of pids) expect(starts).toContain(pid);
  });

  it("recycles a worker after max_attempts_per_worker attempts", async () => {
    const log = join(mesh.scratchDir, "recycle.log");
    await register(warmManifest("org.test.warm.recycle", log, "{size: 1, max_attempts_per_worker: 2}"));
    const pids: number[] = [];
    for (const text of ["a", "b", "c"]) pids.push((await runOnce(clients, "org.test.warm.recycle", text)).pid);
    expect(pids[0]).toBe(pids[1]);
    expect(pids[2]).not.toBe(pids[0]);
    const { starts, exits } = await processLog(log);
    expect(starts).toEqual([pids[0], pids[2]]);
    // The retired worker was drained: its agent left its loop and exited cleanly.
    await until(async () => (await processLog(log)).exits.has(pids[0]!), "the retired worker to exit");
    expect((await processLog(log)).exits.get(pids[0]!)).toBe(0);
    expect(exits.has(pids[2]!)).toBe(false);
  });

  it("fails the attempt, saying why, when the agent's workers cannot start", async () => {
    const broken = ["id: org.test.warm.broken", "version: 1.0.0", "long_running: true", "outputs: [{name: text, type: text}]"];
    await register([...broken, `command: [node, -e, "console.error('no model file'); process.exit(2)"]`].join("\n"));
    const flow = oneNodeFlow("warm-broken", { id: "w", agent: "org.test.warm.broken" });
    const { run: submitted } = await clients.orchestrator.submitFlow({ source: { source: { case: "text", value: flow } } });
    const { run } = await followRun(clients, submitted?.runId ?? "");
    expect(run.state).toBe(RunState.FAILED);
    expect(run.nodes[0]?.error).toBe("a warm worker of org.test.warm.broken@1.0.0 exited before it was ready: no model file");
  });

  /**
   * Runs a fresh `agent` (pool of two, retried once) with param `param` naming a marker file: its first
   * attempt dies midway, writing the pid of the agent process there.
   */
  async function runThroughCrash(agent: string, param: string) {
    const log = join(mesh.scratchDir, `${agent}.log`);
    const marker = join(mesh.scratchDir, `${agent}.marker`);
    await register(warmManifest(agent, log, "{size: 2}"));
    const { pid, events } = await runOnce(clients, agent, "x", { [param]: marker }, "\n      retry: {max_attempts: 2, initial_delay: 10ms}");
    const retrying = events.find((e) => e.event.case === "nodeState" && e.event.value.attempt === 1 && e.event.value.reason.includes("retrying"));
    const retryReason = retrying?.event.case === "nodeState" ? retrying.event.value.reason : "";
    return { pid, events, log, crashedPid: Number(await readFile(marker, "utf8")), retryReason };
  }

  it("retries an attempt whose worker crashed mid-attempt on another worker, per the node's retry policy", async () => {
    const { pid, events, log, crashedPid, retryReason } = await runThroughCrash("org.test.warm.crash", "crash_once_marker");
    expect(pid).not.toBe(crashedPid);
    expect(stateTrail(events)).toEqual(["run PENDING", "run RUNNING", "w RUNNING 1", "w RETRYING 1", "w RUNNING 2", "w SUCCEEDED 2", "run SUCCEEDED"]);
    expect(retryReason).toContain("the warm worker's agent exited with code 1 mid-attempt");
    // The crashed worker was replaced, so the pool is back to two.
    await until(async () => (await processLog(log)).starts.length === 3, "a replacement worker");
  });

  it("retries an attempt whose worker process was killed mid-attempt on another worker, and leaves none of it running", async () => {
    const { pid, crashedPid: orphaned, retryReason } = await runThroughCrash("org.test.warm.kill", "kill_worker_once_marker");
    expect(pid).not.toBe(orphaned);
    expect(retryReason).toMatch(/^warm worker pid \d+ was killed by SIGKILL mid-attempt/);
    // The agent whose worker died was stopped with it.
    await until(async () => {
      try {
        process.kill(orphaned, 0);
        return false;
      } catch {
        return true;
      }
    }, "the orphaned agent to be stopped");
  });
});

describe("warm agents on shutdown", () => {
  it("drains the pool: idle workers stop, their agents leave the loop and exit cleanly", async () => {
    const mesh = await startEmbeddedMesh("e2e-warm-stop-", "mlk_e2e_warm_stop_0123456789", "dana@ws-warm");
    // Outside the mesh's scratch dir, which goes with the mesh.
    const logDir = await mkdtemp(join(tmpdir(), "e2e-warm-stop-log-"));
    const log = join(logDir, "stop.log");
    try {
      const clients = meshClients(mesh);
      await clients.registry.registerAgent({ source: { source: { case: "text", value: warmManifest("org.test.warm.stop", log, "{size: 2}") } } });
      await runOnce(clients, "org.test.warm.stop", "a");
      await until(async () => (await processLog(log)).starts.length === 2, "both workers");
      const { starts } = await processLog(log);
      await mesh.close();
      const { exits } = await processLog(log);
      expect(starts.map((pid) => exits.get(pid))).toEqual([0, 0]);
      for (const pid of starts) expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      await mesh.close().catch(() => undefined);
      await rm(logDir, { recursive: true, force: true });
    }
  });
});
