import { ConfigError, choiceVar, integerVar, type Env } from "../../shared/env.js";
import { type GpuScheduling, gpuSchedulingFromEnv } from "./gpu-scheduling.js";

/** Where agent Jobs go and what they are built from; every field has a default. */
export interface KubernetesExecutorConfig {
  /** `MENTATLAB_K8S_NAMESPACE`, default `default`: namespace of the agent Jobs and their Secrets. */
  readonly namespace: string;
  /** `MENTATLAB_SIDECAR_IMAGE`, default `mentatlab/agent-sidecar:latest`: image of the native sidecar. */
  readonly sidecarImage: string;
  /** `MENTATLAB_K8S_GATEWAY_URL`, default `http://mentatlab-gateway:8080`: gateway URL as seen from inside agent pods. */
  readonly gatewayUrl: string;
  /** `MENTATLAB_K8S_KUBECONFIG`, default `default`: `default` (KUBECONFIG, ~/.kube/config, then in-cluster) or `cluster` (service account only). */
  readonly kubeconfigSource: "default" | "cluster";
  /** `MENTATLAB_K8S_JOB_TTL_SECONDS`, default 3600: finished Jobs (and their pods, Secrets) are collected this long after they end. */
  readonly jobTtlSeconds: number;
  /** `MENTATLAB_K8S_RUN_AS_USER`, default 65532: uid (and gid) agent pods run as; never root. */
  readonly runAsUser: number;
  /** `MENTATLAB_K8S_SERVICE_ACCOUNT`, default empty (namespace default): service account of agent pods, whose token is not mounted. */
  readonly serviceAccountName: string;
  /** `MENTATLAB_K8S_IMAGE_PULL_POLICY`, default `IfNotPresent`: pull policy of agent and sidecar images. */
  readonly imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  /** `MENTATLAB_K8S_LOG_TAIL_LINES`, default 20: agent log lines quoted in a failure. */
  readonly logTailLines: number;
  /** `MENTATLAB_K8S_DELETE_PROPAGATION`, default `Background`: how a cancelled attempt's Job is deleted (`Foreground` waits for its pods). */
  readonly deletePropagation: "Background" | "Foreground";
  /** `MENTATLAB_K8S_WATCH_RETRY_MAX_MS`, default 5000: cap of the backoff between re-watches after a watch error. */
  readonly watchRetryMaxMs: number;
  /** `MENTATLAB_K8S_GPU_*`: node selector, tolerations and runtime class of pods that get a GPU (./gpu-scheduling.ts). */
  readonly gpuScheduling: GpuScheduling;
}

/** Reads the Kubernetes executor's settings; throws an error naming the variable to fix. */
export function kubernetesExecutorConfigFromEnv(env: Env): KubernetesExecutorConfig {
  const namespace = env.MENTATLAB_K8S_NAMESPACE || "default";
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new ConfigError("MENTATLAB_K8S_NAMESPACE", "a DNS-1123 label (lower-case letters, digits, '-')", namespace);
  }
  return {
    namespace,
    sidecarImage: env.MENTATLAB_SIDECAR_IMAGE || "mentatlab/agent-sidecar:latest",
    gatewayUrl: (env.MENTATLAB_K8S_GATEWAY_URL || "http://mentatlab-gateway:8080").replace(/\/+$/, ""),
    kubeconfigSource: choiceVar(env, "MENTATLAB_K8S_KUBECONFIG", ["default", "cluster"], "default"),
    jobTtlSeconds: integerVar(env, "MENTATLAB_K8S_JOB_TTL_SECONDS", 3600),
    runAsUser: integerVar(env, "MENTATLAB_K8S_RUN_AS_USER", 65532, { min: 1 }),
    serviceAccountName: env.MENTATLAB_K8S_SERVICE_ACCOUNT ?? "",
    imagePullPolicy: choiceVar(env, "MENTATLAB_K8S_IMAGE_PULL_POLICY", ["Always", "IfNotPresent", "Never"], "IfNotPresent"),
    logTailLines: integerVar(env, "MENTATLAB_K8S_LOG_TAIL_LINES", 20, { min: 1 }),
    deletePropagation: choiceVar(env, "MENTATLAB_K8S_DELETE_PROPAGATION", ["Background", "Foreground"], "Background"),
    watchRetryMaxMs: integerVar(env, "MENTATLAB_K8S_WATCH_RETRY_MAX_MS", 5000, { min: 1 }),
    gpuScheduling: gpuSchedulingFromEnv(env),
  };
}
