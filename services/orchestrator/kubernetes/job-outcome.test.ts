import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { failureOf, jobPhase } from "./job-outcome.js";

const failedJob: V1Job = {
  spec: { template: {}, activeDeadlineSeconds: 60 },
  status: { conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" }] },
};

/** A pod whose agent container is in `state`. */
function agentPod(state: NonNullable<NonNullable<V1Pod["status"]>["containerStatuses"]>[number]["state"]): V1Pod {
  return { status: { containerStatuses: [{ name: "agent", image: "x", imageID: "", ready: false, restartCount: 0, state }] } };
}

describe("jobPhase", () => {
  it("reads only terminal conditions that hold", () => {
    expect(jobPhase({ status: { active: 1 } })).toBe("running");
    expect(jobPhase({ status: { conditions: [{ type: "FailureTarget", status: "True" }] } })).toBe("running");
    expect(jobPhase({ status: { conditions: [{ type: "Complete", status: "False" }] } })).toBe("running");
    expect(jobPhase({ status: { conditions: [{ type: "Complete", status: "True" }] } })).toBe("succeeded");
    expect(jobPhase(failedJob)).toBe("failed");
  });
});

describe("failureOf", () => {
  it("treats an eviction as transient: the node was at fault, not the agent", () => {
    const pod: V1Pod = { status: { phase: "Failed", reason: "Evicted", message: "The node was low on resource: ephemeral-storage." } };
    expect(failureOf(failedJob, pod, [])).toEqual({
      kind: "failed",
      reason: "agent pod was evicted: The node was low on resource: ephemeral-storage.",
      transient: true,
    });
  });

  it("names why an agent never started", () => {
    const pod = agentPod({ waiting: { reason: "ImagePullBackOff", message: "Back-off pulling image" } });
    expect(failureOf(failedJob, pod, [])).toEqual({
      kind: "failed",
      reason: "agent container never started: ImagePullBackOff: Back-off pulling image",
      transient: false,
    });
  });

  it("falls back to the Job's condition when there is no pod, and skips blank log lines", () => {
    expect(failureOf(failedJob, undefined, ["", "  "])).toEqual({
      kind: "failed",
      reason: "agent Job failed: BackoffLimitExceeded: Job has reached the specified backoff limit",
      transient: false,
    });
  });

  it("keeps the termination message an agent wrote", () => {
    const pod = agentPod({ terminated: { exitCode: 2, reason: "Error", message: "bad params\n" } });
    expect(failureOf(failedJob, pod, ["last"]).reason).toBe("agent exited with code 2: bad params\nlast log lines:\nlast");
  });
});
