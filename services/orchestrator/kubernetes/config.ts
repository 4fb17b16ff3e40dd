import { type GpuScheduling, gpuSchedulingFromEnv } from "./gpu-scheduling.js";

type Env = Readonly<Record<string, string | undefined>>;

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

const pullPolicies = ["Always", "IfNotPresent", "Never"] as const;

/** Reads the Kubernetes executor's settings; throws an error naming the variable to fix. */
export function kubernetesExecutorConfigFromEnv(env: Env): KubernetesExecutorConfig {
  const kubeconfigSource = env.MENTATLAB_K8S_KUBECONFIG || "default";
  if (kubeconfigSource !== "default" && kubeconfigSource !== "cluster") {
    throw new Error(`MENTATLAB_K8S_KUBECONFIG must be default or cluster, not "${kubeconfigSource}"`);
  }
  const imagePullPolicy = env.MENTATLAB_K8S_IMAGE_PULL_POLICY || "IfNotPresent";
  if (!isPullPolicy(imagePullPolicy)) {
    throw new Error(`MENTATLAB_K8S_IMAGE_PULL_POLICY must be one of ${pullPolicies.join(", ")}, not "${imagePullPolicy}"`);
  }
  const deletePropagation = env.MENTATLAB_K8S_DELETE_PROPAGATION || "Background";
  if (deletePropagation !== "Background" && deletePropagation !== "Foreground") {
    throw new Error(`MENTATLAB_K8S_DELETE_PROPAGATION must be Background or Foreground, not "${deletePropagation}"`);
  }
  const namespace = env.MENTATLAB_K8S_NAMESPACE || "default";
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new Error(`MENTATLAB_K8S_NAMESPACE must be a DNS-1123 label (lower-case letters, digits, '-'), not "${namespace}"`);
  }
  return {
    namespace,
    sidecarImage: env.MENTATLAB_SIDECAR_IMAGE || "mentatlab/agent-sidecar:latest",
    gatewayUrl: (env.MENTATLAB_K8S_GATEWAY_URL || "http://mentatlab-gateway:8080").replace(/\/+$/, ""),
    kubeconfigSource,
    jobTtlSeconds: integer(env, "MENTATLAB_K8S_JOB_TTL_SECONDS", 3600, 0),
    runAsUser: integer(env, "MENTATLAB_K8S_RUN_AS_USER", 65532, 1),
    serviceAccountName: env.MENTATLAB_K8S_SERVICE_ACCOUNT ?? "",
    imagePullPolicy,
    logTailLines: integer(env, "MENTATLAB_K8S_LOG_TAIL_LINES", 20, 1),
    deletePropagation,
    watchRetryMaxMs: integer(env, "MENTATLAB_K8S_WATCH_RETRY_MAX_MS", 5000, 1),
    gpuScheduling: gpuSchedulingFromEnv(env),
  };
}

function isPullPolicy(value: string): value is KubernetesExecutorConfig["imagePullPolicy"] {
  return (pullPolicies as readonly string[]).includes(value);
}

function integer(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, not "${raw}"`);
  return value;
}
