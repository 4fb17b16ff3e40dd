import { describe, expect, it } from "vitest";
import { kubernetesExecutorConfigFromEnv } from "./config.js";

describe("kubernetesExecutorConfigFromEnv", () => {
  it("needs no variables", () => {
    expect(kubernetesExecutorConfigFromEnv({})).toEqual({
      namespace: "default",
      sidecarImage: "mentatlab/agent-sidecar:latest",
      gatewayUrl: "http://mentatlab-gateway:8080",
      kubeconfigSource: "default",
      jobTtlSeconds: 3600,
      runAsUser: 65532,
      serviceAccountName: "",
      imagePullPolicy: "IfNotPresent",
      logTailLines: 20,
      deletePropagation: "Background",
      watchRetryMaxMs: 5000,
      gpuScheduling: { nodeSelector: {}, tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }], runtimeClassName: "" },
    });
  });

  it("reads every variable", () => {
    const config = kubernetesExecutorConfigFromEnv({
      MENTATLAB_K8S_NAMESPACE: "agents",
      MENTATLAB_SIDECAR_IMAGE: "reg/sidecar:1",
      MENTATLAB_K8S_GATEWAY_URL: "http://gw.mesh:9000/",
      MENTATLAB_K8S_KUBECONFIG: "cluster",
      MENTATLAB_K8S_JOB_TTL_SECONDS: "0",
      MENTATLAB_K8S_RUN_AS_USER: "1000",
      MENTATLAB_K8S_SERVICE_ACCOUNT: "agent-runner",
      MENTATLAB_K8S_IMAGE_PULL_POLICY: "Always",
      MENTATLAB_K8S_LOG_TAIL_LINES: "5",
      MENTATLAB_K8S_DELETE_PROPAGATION: "Foreground",
      MENTATLAB_K8S_WATCH_RETRY_MAX_MS: "100",
      MENTATLAB_K8S_GPU_NODE_SELECTOR: "cloud.google.com/gke-accelerator=nvidia-l4, pool=gpu",
      MENTATLAB_K8S_GPU_TOLERATIONS: '[{"key":"dedicated","operator":"Equal","value":"gpu","effect":"NoExecute","tolerationSeconds":60}]',
      MENTATLAB_K8S_GPU_RUNTIME_CLASS: "nvidia",
    });
    expect(config).toEqual({
      namespace: "agents",
      sidecarImage: "reg/sidecar:1",
      gatewayUrl: "http://gw.mesh:9000",
      kubeconfigSource: "cluster",
      jobTtlSeconds: 0,
      runAsUser: 1000,
      serviceAccountName: "agent-runner",
      imagePullPolicy: "Always",
      logTailLines: 5,
      deletePropagation: "Foreground",
      watchRetryMaxMs: 100,
      gpuScheduling: {
        nodeSelector: { "cloud.google.com/gke-accelerator": "nvidia-l4", pool: "gpu" },
        tolerations: [{ key: "dedicated", operator: "Equal", value: "gpu", effect: "NoExecute", tolerationSeconds: 60 }],
        runtimeClassName: "nvidia",
      },
    });
    expect(kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_GPU_TOLERATIONS: "[]" }).gpuScheduling.tolerations).toEqual([]);
  });

  it("rejects values that make no sense, naming the variable", () => {
    expect(() => kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_NAMESPACE: "Agents_1" })).toThrow("MENTATLAB_K8S_NAMESPACE");
    expect(() => kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_KUBECONFIG: "file" })).toThrow("MENTATLAB_K8S_KUBECONFIG");
    expect(() => kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_IMAGE_PULL_POLICY: "always" })).toThrow("MENTATLAB_K8S_IMAGE_PULL_POLICY");
    expect(() => kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_DELETE_PROPAGATION: "Orphan" })).toThrow("MENTATLAB_K8S_DELETE_PROPAGATION");
    expect(() => kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_RUN_AS_USER: "0" })).toThrow("MENTATLAB_K8S_RUN_AS_USER");
    expect(() => kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_JOB_TTL_SECONDS: "-1" })).toThrow("MENTATLAB_K8S_JOB_TTL_SECONDS");
    expect(() => kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_GPU_NODE_SELECTOR: "gpu" })).toThrow(/MENTATLAB_K8S_GPU_NODE_SELECTOR.*"gpu"/);
    expect(() => kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_GPU_RUNTIME_CLASS: "Nvidia" })).toThrow("MENTATLAB_K8S_GPU_RUNTIME_CLASS");
    const tolerations = (value: string) => () => kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_GPU_TOLERATIONS: value });
    expect(tolerations("{")).toThrow(/MENTATLAB_K8S_GPU_TOLERATIONS.*not JSON/);
    expect(tolerations('{"key":"a"}')).toThrow(/not an array/);
    expect(tolerations('[{"key":"a","operator":"In"}]')).toThrow(/\[0\]\.operator must be Equal or Exists/);
    expect(tolerations('[{"key":"a","operator":"Exists","value":"b"}]')).toThrow(/Exists takes no value/);
    expect(tolerations('[{"key":"a","effect":"NoScheduel"}]')).toThrow(/\[0\]\.effect must be one of/);
    expect(tolerations('[{"key":"a","tolerationSecond":5}]')).toThrow(/tolerationSecond is not a toleration field/);
    expect(tolerations('[{"key":"a","effect":"NoSchedule","tolerationSeconds":5}]')).toThrow(/with effect NoExecute/);
  });
});
