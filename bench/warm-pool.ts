// Dispatch -> first agent event, warm pool vs cold start, both measured in this run on the embedded mesh
// (`npm run bench -- warm`). The agent is an SDK agent behind agent-sidecar that takes MODEL_LOAD_MS
// (default 400) to "load its model" at start-up, as a real-time agent does; registered twice, once
// long_running with a warm pool of one worker, once not. Dispatch is the node's RUNNING event, the first
// agent event the agent's first progress report, both as the orchestrator timestamps them in WatchRun.
// Goal (issue #17): warm p95 <= 150 ms and <= 0.2x cold p95. BENCH_REPEATS (default 8) runs of each,
// interleaved, after one unmeasured run of each.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { NodeState, RunState } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { startEmbedded } from "../services/mesh/embedded.js";
import { meshClients, type MeshClients } from "../test/e2e/support/clients.js";
import { failureOf, followRun, oneNodeFlow } from "../test/e2e/support/runs.js";
import { machineLoad, percentile } from "./stream-bench-support.js";

const repeats = Number(process.env.BENCH_REPEATS ?? 8);
const modelLoadMs = process.env.MODEL_LOAD_MS ?? "400";
const apiKey = "mlk_bench_warm_0123456789";

function manifest(id: string, warm: boolean): string {
  return [
    `id: ${id}`,
    "version: 1.0.0",
    "runtime: node",
    `long_running: ${warm}`,
    ...(warm ? ["warm_pool: {size: 1}"] : []),
    "inputs: [{name: text, type: text, required: true}]",
    "outputs: [{name: text, type: text}]",
    `env: {MODEL_LOAD_MS: "${modelLoadMs}"}`,
    "command: [node, --import, tsx, agent-sidecar/main.ts, --, node, --import, tsx, test/e2e/agents/warm-model/agent.ts]",
  ].join("\n");
}

/** Milliseconds from the node's dispatch to its agent's first event, in one run of `agent`. */
async function dispatchToFirstEvent(clients: MeshClients, agent: string): Promise<number> {
  const flow = oneNodeFlow("bench-warm", { id: "n", agent });
  const { run: submitted } = await clients.orchestrator.submitFlow({
    source: { source: { case: "text", value: flow } },
    inputs: { "n.text": { value: { case: "text", value: "hello" } } },
  });
  const { run, events } = await followRun(clients, submitted?.runId ?? "");
  if (run.state !== RunState.SUCCEEDED) throw new Error(`bench run failed: ${failureOf(run)}`);
  const dispatched = events.find((e) => e.event.case === "nodeState" && e.event.value.state === NodeState.RUNNING);
  const first = events.find((e) => e.event.case === "agent" && e.nodeId === "n");
  if (!dispatched?.time || !first?.time) throw new Error("the run has no RUNNING event or no agent event");
  return timestampMs(first.time) - timestampMs(dispatched.time);
}

const summary = (label: string, ms: readonly number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return { label, p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
};

console.log(`${machineLoad()}; ${repeats} runs each, model load ${modelLoadMs} ms`);
const dataDir = await mkdtemp(join(tmpdir(), "bench-warm-"));
const mesh = await startEmbedded({
  port: 0,
  dataDir,
  env: { PATH: process.env.PATH, HOME: process.env.HOME, MENTATLAB_API_KEYS: `${apiKey}=bench@ws-bench:admin`, MENTATLAB_SHUTDOWN_GRACE_MS: "500" },
});
try {
  const clients = meshClients({ url: mesh.url, apiKey });
  for (const [id, warm] of [
    ["org.bench.cold", false],
    ["org.bench.warm", true],
  ] as const) {
    await clients.registry.registerAgent({ source: { source: { case: "text", value: manifest(id, warm) } } });
  }
  // Unmeasured: the warm pool starts its worker at the agent's first attempt, and the first cold start
  // compiles what later ones find cached.
  await dispatchToFirstEvent(clients, "org.bench.cold");
  await dispatchToFirstEvent(clients, "org.bench.warm");
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < repeats; i++) {
    cold.push(await dispatchToFirstEvent(clients, "org.bench.cold"));
    warm.push(await dispatchToFirstEvent(clients, "org.bench.warm"));
  }
  const c = summary("cold", cold);
  const w = summary("warm", warm);
  for (const s of [c, w]) console.log(`${s.label.padEnd(5)} dispatch -> first agent event p50 ${s.p50.toFixed(0)} ms, p95 ${s.p95.toFixed(0)} ms`);
  const ratio = w.p95 / c.p95;
  console.log(`warm/cold p95 ratio ${ratio.toFixed(3)}; goal warm p95 <= 150 ms and <= 0.2x cold: ${w.p95 <= 150 && ratio <= 0.2 ? "met" : "MISSED"}`);
} finally {
  await mesh.close();
  await rm(dataDir, { recursive: true, force: true });
}
