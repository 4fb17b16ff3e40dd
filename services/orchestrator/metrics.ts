import { NodeState, type NodeRun } from "../../gen/mentatlab/v1/orchestrator_pb.js";

/** States that end an attempt, each with the time it ran (`processing_duration_seconds`). */
const attemptEndStates: ReadonlySet<NodeState> = new Set([NodeState.SUCCEEDED, NodeState.FAILED, NodeState.CANCELLED, NodeState.RETRYING]);

/** The orchestrator's counters for the OpenTelemetry metrics the README's Metrics section names; the server wires them to exporters. */
export class OrchestratorMetrics {
  nodeAttemptsEnded = 0;
  /** Called with each ended attempt's agent (`id@version`), the state it ended in, and how long it ran. */
  onNodeAttemptEnded: ((agent: string, state: NodeState, seconds: number) => void) | undefined;

  /** Records the attempt `node` just ended, if its new state ends one and the attempt had started. */
  recordNodeState(node: NodeRun, nowMs: number = Date.now()): void {
    if (!attemptEndStates.has(node.state) || node.startedAt === undefined) return;
    const startedMs = Number(node.startedAt.seconds) * 1000 + node.startedAt.nanos / 1e6;
    this.nodeAttemptsEnded += 1;
    this.onNodeAttemptEnded?.(node.agent, node.state, Math.max(0, (nowMs - startedMs) / 1000));
  }
}
