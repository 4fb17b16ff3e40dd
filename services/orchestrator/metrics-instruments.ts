import type { Meter } from "@opentelemetry/api";
import { NodeState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { metricNames } from "../shared/telemetry/metric-names.js";
import type { OrchestratorMetrics } from "./metrics.js";

/** From a quick text agent to the one-hour stream limit. */
const durationBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** `succeeded` for NodeState.SUCCEEDED: the label value dashboards filter on. */
export function nodeStateLabel(state: NodeState): string {
  return (NodeState[state] ?? "unspecified").toLowerCase();
}

/** The agent id without its version, so a release does not start a new series. */
export function agentLabel(agent: string): string {
  const at = agent.lastIndexOf("@");
  return at > 0 ? agent.slice(0, at) : agent;
}

/** Binds the orchestrator's node attempt timings to `processing_duration_seconds`; call once per OrchestratorRuntime. */
export function registerOrchestratorMetrics(meter: Meter, metrics: OrchestratorMetrics): void {
  const duration = meter.createHistogram(metricNames.processingDuration, {
    description: "Run time of each node attempt, by agent and the state the attempt ended in.",
    unit: "s",
    advice: { explicitBucketBoundaries: durationBuckets },
  });
  metrics.onNodeAttemptEnded = (agent, state, seconds) => duration.record(seconds, { agent: agentLabel(agent), state: nodeStateLabel(state) });
}
