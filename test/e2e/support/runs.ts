import { RunState, type Run, type RunEvent } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import type { MeshClients } from "./clients.js";

const finalStates = new Set([RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED]);

/** Follows a run's events until its final state, then returns the run and every event seen. */
export async function followRun(clients: MeshClients, runId: string): Promise<{ run: Run; events: RunEvent[] }> {
  const events: RunEvent[] = [];
  for await (const event of clients.orchestrator.watchRun({ runId, afterSeq: 0n })) {
    events.push(event);
    if (event.event.case === "runState" && finalStates.has(event.event.value.state)) break;
  }
  const { run } = await clients.orchestrator.getRun({ runId });
  if (!run) throw new Error(`run ${runId} vanished`);
  return { run, events };
}

/** Why a run failed, with each node's error, for assertion messages. */
export function failureOf(run: Run): string {
  return [run.error, ...run.nodes.filter((node) => node.error).map((node) => `${node.nodeId}: ${node.error}`)].filter(Boolean).join("; ");
}

/** A flow of one node running `agent`, as YAML; `params` are written as a JSON (so YAML) mapping. */
export function oneNodeFlow(flowId: string, node: { readonly id: string; readonly agent: string; readonly params?: Record<string, unknown> }): string {
  const params = node.params ? `\n      params: ${JSON.stringify(node.params)}` : "";
  return `apiVersion: v1\nkind: Flow\nmeta: { id: tests.${flowId}, name: ${flowId} }\ngraph:\n  nodes:\n    - id: ${node.id}\n      agent: ${node.agent}${params}\n  edges: []\n`;
}
