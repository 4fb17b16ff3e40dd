import { type NodeRun, NodeState, NodeStateSchema, ReuseKind, RunStateSchema, type Run } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import { columns, describePinValue, enumLabel, formatTime, table } from "./format.js";

/** A run's state, its nodes (with where reused outputs came from) and its outputs, for `run`, `runs get`, `runs cancel` and `runs retry`. */
export function describeRun(run: Run): string {
  const nodes = run.nodes.map((n) => [
    n.nodeId,
    n.agent,
    enumLabel(NodeStateSchema, n.state),
    n.map ? mapProgress(n) : n.progressPercent > 0 ? `${n.progressPercent.toFixed(0)}%` : "",
    n.error,
    n.reused ? `${n.reused.kind === ReuseKind.CACHE ? "cached" : "kept"} from ${n.reused.runId} ${n.reused.nodeId}` : "",
  ]);
  const failedItems = run.nodes.flatMap((n) =>
    (n.map?.items ?? []).filter((item) => item.state === NodeState.FAILED).map((item) => `  ${n.nodeId}[${item.index}]: ${item.error}`),
  );
  const outputs = Object.entries(run.outputs).map(([key, value]) => `  ${key} = ${describePinValue(value)}`);
  return [
    table([
      ["run", run.runId],
      ["flow", run.flow?.meta?.name || run.flow?.meta?.id],
      ["state", enumLabel(RunStateSchema, run.state)],
      ["retry of", run.retryOf],
      ["error", run.error],
      ["owner", run.owner],
      ["created", formatTime(run.createdAt)],
      ["ended", run.endedAt ? formatTime(run.endedAt) : undefined],
    ]),
    nodes.length > 0 ? columns(["NODE", "AGENT", "STATE", "PROGRESS", "ERROR", "REUSED"], nodes) : "",
    failedItems.length > 0 ? `failed items:\n${failedItems.join("\n")}` : "",
    outputs.length > 0 ? `outputs:\n${outputs.join("\n")}` : "",
  ]
    .filter((part) => part !== "")
    .join("\n");
}

/** A mapped node's items, e.g. `map 37/100` (items ended), `map 100/100, 2 failed`. */
export function mapProgress(node: NodeRun): string {
  const items = node.map?.items ?? [];
  const ended = items.filter((item) => [NodeState.SUCCEEDED, NodeState.FAILED, NodeState.CANCELLED].includes(item.state)).length;
  const failed = items.filter((item) => item.state === NodeState.FAILED).length;
  const cancelled = items.filter((item) => item.state === NodeState.CANCELLED).length;
  return `map ${ended}/${node.map?.total ?? items.length}${failed > 0 ? `, ${failed} failed` : ""}${cancelled > 0 ? `, ${cancelled} cancelled` : ""}`;
}

/** One line per run, for `runs list`. */
export function describeRunList(runs: readonly Run[]): string {
  if (runs.length === 0) return "no runs";
  return columns(
    ["RUN", "STATE", "FLOW", "OWNER", "CREATED"],
    runs.map((r) => [r.runId, enumLabel(RunStateSchema, r.state), r.flow?.meta?.name || r.flow?.meta?.id || "", r.owner, formatTime(r.createdAt)]),
  );
}
