import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startFakeKubeApiServer } from "../../../test/harness/fake-kube-apiserver.js";
import { orchestratorConfigFromEnv } from "../config.js";
import type { ExecutorEvent } from "../executor.js";
import { createKubernetesExecutor } from "./index.js";
import { testTask } from "./testing.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("ORCHESTRATOR_EXECUTOR=kubernetes", () => {
  it("reads the Kubernetes settings only when selected", () => {
    const env = { ORCHESTRATOR_EXECUTOR: "kubernetes", MENTATLAB_K8S_NAMESPACE: "agents", MENTATLAB_SIDECAR_IMAGE: "reg/sidecar:2" };
    expect(orchestratorConfigFromEnv(env, "/d").kubernetes).toMatchObject({ namespace: "agents", sidecarImage: "reg/sidecar:2" });
    expect(orchestratorConfigFromEnv({ MENTATLAB_K8S_NAMESPACE: "Not A Namespace" }, "/d").kubernetes).toBeUndefined();
    expect(() => orchestratorConfigFromEnv({ ...env, MENTATLAB_K8S_NAMESPACE: "Not A Namespace" }, "/d")).toThrow("MENTATLAB_K8S_NAMESPACE");
  });

  it("runs Jobs on the cluster KUBECONFIG names", async () => {
    const server = await startFakeKubeApiServer();
    const dir = mkdtempSync(join(tmpdir(), "kubeconfig-"));
    try {
      const file = join(dir, "config");
      writeFileSync(
        file,
        `apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {server: "${server.url}", insecure-skip-tls-verify: true}\nusers:\n- name: t\n  user: {token: fake}\ncontexts:\n- name: fake\n  context: {cluster: fake, user: t}\ncurrent-context: fake\n`,
      );
      vi.stubEnv("KUBECONFIG", file);
      const config = orchestratorConfigFromEnv({ ORCHESTRATOR_EXECUTOR: "kubernetes", MENTATLAB_K8S_NAMESPACE: "agents" }, dir).kubernetes;
      if (!config) throw new Error("kubernetes config missing");
      const events: ExecutorEvent[] = [];
      for await (const event of createKubernetesExecutor(config).execute(testTask(), new AbortController().signal)) events.push(event);
      expect(events.at(-1)).toEqual({ kind: "succeeded", outputs: {} });
      expect(server.requests.some((r) => r.method === "POST" && r.path === "/apis/batch/v1/namespaces/agents/jobs")).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await server.stop();
    }
  });
});
