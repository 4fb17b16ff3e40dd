import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { LogLevel } from "../../../gen/mentatlab/v1/common_pb.js";
import { podChange } from "./pod-notices.js";

const pod = (status: V1Pod["status"]): V1Pod => ({ metadata: { name: "p1" }, status });

describe("podChange", () => {
  it("reports each fact once, when it first appears", () => {
    const pending = pod({ conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "no GPU" }] });
    expect(podChange(undefined, pending).notices).toEqual([{ level: LogLevel.WARN, message: "pod p1 cannot be scheduled yet: no GPU" }]);
    expect(podChange(pending, pending).notices).toEqual([]);
    const started = pod({
      initContainerStatuses: [{ name: "sidecar", image: "s", imageID: "", ready: true, restartCount: 0, state: { running: {} } }],
      containerStatuses: [{ name: "agent", image: "a", imageID: "", ready: true, restartCount: 0, state: { running: {} } }],
    });
    expect(podChange(pending, started).notices.map((n) => n.message)).toEqual(["sidecar is ready", "agent container started"]);
    expect(podChange(started, started).notices).toEqual([]);
  });

  it("ignores the ordinary waits of a starting pod and gives up only on hopeless ones", () => {
    const waiting = (reason: string) =>
      pod({ containerStatuses: [{ name: "agent", image: "bad image", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason } } }] });
    expect(podChange(undefined, waiting("ContainerCreating"))).toEqual({ notices: [] });
    expect(podChange(undefined, waiting("PodInitializing"))).toEqual({ notices: [] });
    expect(podChange(undefined, waiting("ErrImagePull")).fatal).toBeUndefined();
    expect(podChange(undefined, waiting("CreateContainerConfigError")).fatal).toBeUndefined();
    expect(podChange(undefined, waiting("InvalidImageName")).fatal).toBe("agent container is waiting: InvalidImageName (image bad image)");
  });
});
