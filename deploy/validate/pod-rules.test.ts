import { describe, expect, it } from "vitest";
import type { KubeObject } from "./kube-object.js";
import { exposedSecrets, literalCredentialEnv, rootContainers, unhardenedContainers } from "./pod-rules.js";

function job(pod: Record<string, unknown>): KubeObject {
  return { apiVersion: "batch/v1", kind: "Job", metadata: { name: "j" }, spec: { template: { spec: { restartPolicy: "Never", ...pod } } } };
}
const locked = { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } };

describe("pod rules", () => {
  it("a container may run as root unless the pod or the container forbids it, and never as uid 0", () => {
    expect(rootContainers(job({ containers: [{ name: "a", image: "i" }] }))).toEqual(["Job/j containers[a]"]);
    expect(rootContainers(job({ securityContext: { runAsNonRoot: true }, containers: [{ name: "a", image: "i" }] }))).toEqual([]);
    expect(
      rootContainers(
        job({ securityContext: { runAsNonRoot: true }, initContainers: [{ name: "s", image: "i", securityContext: { runAsUser: 0 } }], containers: [] }),
      ),
    ).toEqual(["Job/j initContainers[s]"]);
  });

  it("hardening needs no escalation, ALL capabilities dropped and, where asked, a read-only root", () => {
    expect(unhardenedContainers(job({ containers: [{ name: "a", image: "i", securityContext: locked }] }), { readOnlyRoot: true })).toEqual([]);
    const writable = { ...locked, readOnlyRootFilesystem: false };
    expect(unhardenedContainers(job({ containers: [{ name: "a", image: "i", securityContext: writable }] }), { readOnlyRoot: true })).toEqual([
      "Job/j containers[a]",
    ]);
    expect(unhardenedContainers(job({ containers: [{ name: "a", image: "i", securityContext: writable }] }), { readOnlyRoot: false })).toEqual([]);
  });

  it("secret values must not appear in command, args or literal env, and credentials come from Secrets", () => {
    const leaky = job({ containers: [{ name: "a", image: "i", args: ["--password=hunter2hunter2"], env: [{ name: "DB_PASSWORD", value: "x" }] }] });
    expect(exposedSecrets(leaky, ["hunter2hunter2"])).toEqual(["Job/j containers[a] args"]);
    expect(literalCredentialEnv(leaky)).toEqual(["Job/j containers[a] env DB_PASSWORD"]);
  });
});
