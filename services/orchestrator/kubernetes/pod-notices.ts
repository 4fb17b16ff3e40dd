import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import { LogLevel } from "../../../gen/mentatlab/v1/common_pb.js";
import { agentContainerName, sidecarContainerName } from "./job-spec.js";

export interface PodNotice {
  readonly level: LogLevel;
  readonly message: string;
}

/** What changed in the agent's pod that a person watching the run wants to know, and whether it can never start. */
export interface PodChange {
  readonly notices: readonly PodNotice[];
  /** Set when the pod cannot start whatever happens next: waiting would only run into the deadline. */
  readonly fatal?: string;
}

/** Waiting reasons kubelet gives up on for good; the others (ImagePullBackOff, a Secret not there yet) may resolve. */
const hopelessWaits: ReadonlySet<string> = new Set(["InvalidImageName", "ErrImageNeverPull"]);

/**
 * Compares two states of the agent's pod: scheduling trouble (e.g. no node with a free GPU), the
 * sidecar becoming ready, the agent starting, and containers stuck waiting (image pulls, config).
 * Each fact is reported once, when it first appears.
 */
export function podChange(previous: V1Pod | undefined, current: V1Pod): PodChange {
  const notices: PodNotice[] = [];
  let fatal: string | undefined;
  const unschedulable = (pod: V1Pod | undefined) =>
    pod?.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable")?.message;
  const blocked = unschedulable(current);
  if (blocked !== undefined && blocked !== unschedulable(previous))
    notices.push({ level: LogLevel.WARN, message: `pod ${current.metadata?.name} cannot be scheduled yet: ${blocked}` });

  for (const [role, name] of [
    ["sidecar", sidecarContainerName],
    ["agent", agentContainerName],
  ] as const) {
    const before = containerStatus(previous, name);
    const now = containerStatus(current, name);
    if (!now) continue;
    const waiting = now.state?.waiting?.reason;
    if (waiting && waiting !== "PodInitializing" && waiting !== "ContainerCreating" && waiting !== before?.state?.waiting?.reason) {
      const message = `${role} container is waiting: ${waiting}${now.state?.waiting?.message ? `: ${now.state.waiting.message}` : ""}`;
      notices.push({ level: LogLevel.WARN, message });
      if (hopelessWaits.has(waiting)) fatal ??= `${message} (image ${now.image || "?"})`;
    }
    if (role === "sidecar" && now.ready && !before?.ready) notices.push({ level: LogLevel.INFO, message: "sidecar is ready" });
    if (role === "agent" && now.state?.running && !before?.state?.running) notices.push({ level: LogLevel.INFO, message: "agent container started" });
  }
  return fatal === undefined ? { notices } : { notices, fatal };
}

function containerStatus(pod: V1Pod | undefined, name: string): V1ContainerStatus | undefined {
  return [...(pod?.status?.initContainerStatuses ?? []), ...(pod?.status?.containerStatuses ?? [])].find((s) => s.name === name);
}
