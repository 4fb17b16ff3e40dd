import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import { OrchestratorService } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../../gen/mentatlab/v1/stream_pb.js";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "../../../test/harness/fake-kube-apiserver.js";
import { inMemoryClient, testPrincipal } from "../../../test/support/in-memory.js";
import { RunTokenSigner } from "../../shared/run-token.js";
import { orchestratorConfigFromEnv } from "../config.js";
import type { ExecutorEvent } from "../executor.js";
import { createOrchestrator } from "../index.js";
import { text } from "../testing.js";
import { createKubernetesExecutor } from "./index.js";
import { jobName } from "./job-name.js";
import { testTask } from "./testing.js";

/** A kubeconfig file naming the fake API server, as KUBECONFIG would. */
function writeKubeconfig(dir: string, server: FakeKubeApiServer): string {
  const file = join(dir, "config");
  writeFileSync(
    file,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {server: "${server.url}", insecure-skip-tls-verify: true}\nusers:\n- name: t\n  user: {token: fake}\ncontexts:\n- name: fake\n  context: {cluster: fake, user: t}\ncurrent-context: fake\n`,
  );
  return file;
}

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
      vi.stubEnv("KUBECONFIG", writeKubeconfig(dir, server));
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

  it("makes createOrchestrator run nodes as Jobs", async () => {
    const server = await startFakeKubeApiServer();
    const dir = mkdtempSync(join(tmpdir(), "kubeconfig-"));
    vi.stubEnv("KUBECONFIG", writeKubeconfig(dir, server));
    // Storage and streams are never reached by a flow of text values.
    const unused = createRouterTransport(() => undefined);
    const runtime = await createOrchestrator(
      orchestratorConfigFromEnv({ ORCHESTRATOR_EXECUTOR: "kubernetes", MENTATLAB_K8S_NAMESPACE: "agents", ORCHESTRATOR_REGISTRY_FILE: "none" }, dir),
      {
        storage: createClient(StorageService, unused),
        streams: createClient(StreamService, unused),
        runTokens: new RunTokenSigner("test-secret-0123456789"),
        hostEnv: process.env,
      },
    );
    try {
      const registry = inMemoryClient(AgentRegistryService, (router) => router.service(AgentRegistryService, runtime.registryImpl), testPrincipal());
      const client = inMemoryClient(OrchestratorService, (router) => router.service(OrchestratorService, runtime.orchestratorImpl), testPrincipal());
      await registry.registerAgent({
        source: {
          source: {
            case: "text",
            value: "id: org.test.pod\nversion: 1.0.0\nimage: registry.example/pod:1\ninputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]",
          },
        },
      });
      const { run } = await client.submitFlow({
        source: { source: { case: "text", value: "apiVersion: v1\nkind: Flow\nmeta: {id: t}\ngraph:\n  nodes: [{id: a, agent: org.test.pod}]\n  edges: []" } },
        inputs: { "a.text": text("hi") },
      });
      const name = jobName(run?.runId ?? "", "a", 1);
      for (let i = 0; !server.job("agents", name); i++) {
        if (i > 300) throw new Error(`no Job ${name}`);
        await sleep(10);
      }
      expect(server.job("agents", name)?.spec?.template.spec?.containers[0]?.image).toBe("registry.example/pod:1");
    } finally {
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
      await server.stop();
    }
  });
});
