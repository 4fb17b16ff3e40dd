import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { ExecutionOutcome } from "../executor.js";
import { transientExitCode } from "../../../agent-contract/plain-contract.js";
import { agentContainerName } from "./job-spec.js";

export type JobPhase = "running" | "succeeded" | "failed";

/** Where a Job stands, from its terminal conditions (the Job controller sets exactly one of them). */
export function jobPhase(job: V1Job): JobPhase {
  const conditions = job.status?.conditions ?? [];
  if (conditions.some((c) => c.type === "Complete" && c.status === "True")) return "succeeded";
  if (conditions.some((c) => c.type === "Failed" && c.status === "True")) return "failed";
  return "running";
}

/**
 * Why a failed Job failed, from what Kubernetes recorded: the deadline, the agent container's
 * termination (exit code 3 is the plain contract's transient failure; OOMKilled is final, since the
 * next attempt gets the same memory), an eviction (transient: the node, not the agent, was at fault),
 * or an agent that never started. The agent's last log lines, when there are any, end the reason.
 */
export function failureOf(job: V1Job, pod: V1Pod | undefined, logLines: readonly string[]): Extract<ExecutionOutcome, { kind: "failed" }> {
  const failed = job.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
  const agent = pod?.status?.containerStatuses?.find((s) => s.name === agentContainerName);
  const terminated = agent?.state?.terminated ?? agent?.lastState?.terminated;
  const waiting = agent?.state?.waiting;
  let reason: string;
  let transient = false;
  if (failed?.reason === "DeadlineExceeded") {
    reason = `agent ran past its deadline of ${job.spec?.activeDeadlineSeconds ?? "?"} s (DeadlineExceeded)`;
  } else if (terminated?.reason === "OOMKilled") {
    const limit = pod?.spec?.containers.find((c) => c.name === agentContainerName)?.resources?.limits?.["memory"];
    reason = `agent was killed for running out of memory (OOMKilled${limit ? `, limit ${limit}` : ""})`;
  } else if (terminated) {
    transient = terminated.exitCode === transientExitCode;
    const detail = terminated.reason && terminated.reason !== "Error" ? ` (${terminated.reason})` : "";
    reason = `agent exited with code ${terminated.exitCode}${detail}${terminated.message ? `: ${terminated.message.trim()}` : ""}`;
  } else if (pod?.status?.reason === "Evicted") {
    transient = true;
    reason = `agent pod was evicted: ${pod.status.message ?? "no message"}`;
  } else if (waiting?.reason) {
    reason = `agent container never started: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}`;
  } else {
    reason = `agent Job failed: ${failed?.reason ?? "no reason recorded"}${failed?.message ? `: ${failed.message}` : ""}`;
  }
  const tail = logLines.filter((line) => line.trim() !== "");
  if (tail.length > 0) reason += `\nlast log lines:\n${tail.join("\n")}`;
  return { kind: "failed", reason, transient };
}
