import { KubeConfig } from "@kubernetes/client-node";
import type { KubernetesExecutorConfig } from "./config.js";

/**
 * The API server and credentials to use: `default` follows kubectl (KUBECONFIG, ~/.kube/config, then
 * the pod's service account when running in a cluster); `cluster` insists on the service account.
 */
export function loadKubeConfig(source: KubernetesExecutorConfig["kubeconfigSource"]): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (source === "cluster") kubeConfig.loadFromCluster();
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}
