// What the orchestrator benchmarks share: the generated DAG, the no-op agent, an orchestrator over a
// given run store with in-process clients, and a submit that waits for the run's final event.
import { performance } from "node:perf_hooks";
import { CacheMode, type Flow, OrchestratorService, RunState } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentCatalog } from "../services/registry/agent-catalog.js";
import { parseManifestText } from "../services/registry/manifest-parse.js";
import { MemoryAgentStore } from "../services/registry/memory-agent-store.js";
import { orchestratorConfigFromEnv } from "../services/orchestrator/config.js";
import type { Executor } from "../services/orchestrator/executor.js";
import { parseFlowText } from "../services/orchestrator/flow-parse.js";
import { createOrchestratorService } from "../services/orchestrator/orchestrator-service.js";
import { RunEngine } from "../services/orchestrator/run-engine.js";
import type { RunStore } from "../services/orchestrator/run-store.js";
import { RunTokenSigner } from "../services/shared/run-token.js";
import { inMemoryClient } from "../test/support/in-memory.js";

/**
 * Each node takes up to two earlier nodes as inputs (deterministic LCG), so the DAG has long chains and
 * wide fan-out. With `numbered`, each node gets its index as a parameter, so no two share a cache key.
 */
export function dagYaml(n: number, numbered = false): string {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const nodes: string[] = [];
  const edges: string[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push(`{id: n${i}, agent: org.bench.noop${numbered ? `, params: {i: ${i}}` : ""}}`);
    if (i === 0) continue;
    const a = Math.floor(next() * i);
    edges.push(`{from: n${a}.out, to: n${i}.a}`);
    const b = Math.floor(next() * i);
    if (b !== a && next() < 0.5) edges.push(`{from: n${b}.out, to: n${i}.b}`);
  }
  return `kind: Flow\ngraph:\n  nodes: [${nodes.join(", ")}]\n  edges: [${edges.join(", ")}]`;
}

export function parsedFlow(text: string): Flow {
  const flow = parseFlowText(text).flow;
  if (!flow) throw new Error("bench flow does not parse");
  return flow;
}

/** The catalog holding the bench's no-op agent; `cacheable` marks it so for the node cache. */
export async function benchCatalog(cacheable = false): Promise<AgentCatalog> {
  const { manifest } = parseManifestText(
    `{id: org.bench.noop, version: 1.0.0, cacheable: ${cacheable}, command: [true], inputs: [{name: a, type: json}, {name: b, type: json}], outputs: [{name: out, type: json}]}`,
  );
  if (!manifest) throw new Error("bench manifest does not parse");
  const agents = new MemoryAgentStore();
  await agents.put(manifest);
  return new AgentCatalog(agents);
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** An orchestrator over `store`, as a client sees it: `run` submits a flow and resolves with the milliseconds until WatchRun delivers its final event. */
export function benchOrchestrator(store: RunStore, catalog: AgentCatalog, executor: Executor, concurrency: number) {
  const config = { ...orchestratorConfigFromEnv({ ORCHESTRATOR_REGISTRY_FILE: "none" }, "/nonexistent"), maxConcurrentNodes: concurrency };
  const runTokens = new RunTokenSigner("bench-secret-0123456789");
  const engine = new RunEngine({ store, catalog, executor, streams: undefined, media: undefined, runTokens, config, recover: false });
  const client = inMemoryClient(OrchestratorService, (router) => router.service(OrchestratorService, createOrchestratorService({ store, catalog, engine })));
  return {
    async run(flow: Flow, cache = CacheMode.UNSPECIFIED): Promise<number> {
      const started = performance.now();
      const { run } = await client.submitFlow({ source: { source: { case: "flow", value: flow } }, cache });
      let final = RunState.UNSPECIFIED;
      for await (const event of client.watchRun({ runId: run?.runId ?? "" })) {
        if (event.event.case === "runState") final = event.event.value.state;
      }
      if (final !== RunState.SUCCEEDED) throw new Error(`bench run ended ${RunState[final]}`);
      return performance.now() - started;
    },
    close: () => engine.close(),
  };
}
