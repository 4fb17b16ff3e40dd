/**
 * The Kubernetes executor: each node attempt as a Job with the agent-sidecar as a native sidecar and
 * its settings in a per-attempt Secret. The sidecar's container parts (`sidecarContainer`,
 * `agentSidecarEnv`, the shared volumes) are exported for the injection webhook (services/webhook).
 *
 * @example
 * ```ts
 * // deploy/validate/runtime-imports.ts follows imports even in comments: this path resolves from here.
 * import { createKubernetesExecutor, kubernetesExecutorConfigFromEnv } from "../kubernetes/index.js";
 *
 * const executor = createKubernetesExecutor(kubernetesExecutorConfigFromEnv(env));
 * ```
 */
import type { KubernetesExecutorConfig } from "./config.js";
import { loadKubeConfig } from "./kube-config.js";
import { KubernetesExecutor } from "./kubernetes-executor.js";

export { kubernetesExecutorConfigFromEnv, type KubernetesExecutorConfig } from "./config.js";
export { KubernetesExecutor, type KubernetesExecutorOptions } from "./kubernetes-executor.js";
export { buildJob, buildRunSecret } from "./job-spec.js";
export { jobName } from "./job-name.js";
export { loadKubeConfig } from "./kube-config.js";
export {
  agentSidecarEnv,
  attemptVolumeName,
  sharedVolumeMount,
  sharedVolumeName,
  sidecarContainer,
  sidecarContainerName,
  sidecarVolumes,
  type SidecarWiring,
} from "./sidecar-parts.js";

/** The executor `ORCHESTRATOR_EXECUTOR=kubernetes` selects, talking to the cluster the config names. */
export function createKubernetesExecutor(config: KubernetesExecutorConfig): KubernetesExecutor {
  return new KubernetesExecutor({ kubeConfig: loadKubeConfig(config.kubeconfigSource), config });
}
