import type { V1Container, V1EnvVar, V1Job, V1ResourceRequirements, V1Secret } from "@kubernetes/client-node";
import { sidecarEnv } from "../../../agent-contract/sidecar-env.js";
import type { NodeTask } from "../executor.js";
import type { KubernetesExecutorConfig } from "./config.js";
import { gpuCount, gpuPlacement } from "./gpu-scheduling.js";
import { jobName, labelValue } from "./job-name.js";
import { plainBridgeCommand } from "./plain-bridge.js";
import {
  agentSidecarEnv,
  inputsKey,
  restrictedContainer,
  sharedVolumeMount,
  sidecarContainer,
  sidecarTokenKey,
  sidecarVolumes,
  type SidecarWiring,
} from "./sidecar-parts.js";

export const agentContainerName = "agent";
export { inputsKey, runTokenKey, sidecarContainerName, sidecarTokenKey } from "./sidecar-parts.js";

/** Labels every object of one attempt carries, so a run's Jobs, pods and Secrets can be selected. */
export const labelKeys = {
  managedBy: "app.kubernetes.io/managed-by",
  run: "mentatlab.dev/run",
  node: "mentatlab.dev/node",
  attempt: "mentatlab.dev/attempt",
  workspace: "mentatlab.dev/workspace",
} as const;
const managedBy = "mentatlab-orchestrator";

/** A node attempt as Kubernetes objects: the Job, and the Secret holding its credentials. */
export function buildJob(task: NodeTask, config: KubernetesExecutorConfig): V1Job {
  const name = jobName(task.runId, task.nodeId, task.attempt);
  const labels = attemptLabels(task);
  const annotations = {
    "mentatlab.dev/run-id": task.runId,
    "mentatlab.dev/node-id": task.nodeId,
    "mentatlab.dev/workspace": task.workspace,
    "mentatlab.dev/agent": `${task.agent.id}@${task.agent.version}`,
  };
  // A manifest command means the plain contract: it runs behind the file bridge; without one the image's
  // entrypoint is an SDK agent talking to the sidecar's socket.
  const bridgeCommand = plainBridgeCommand(task.agent.command);
  const wiring: SidecarWiring = {
    image: config.sidecarImage,
    imagePullPolicy: config.imagePullPolicy,
    gatewayUrl: config.gatewayUrl,
    secretName: name,
    plainBridge: bridgeCommand !== undefined,
  };
  const agent: V1Container = {
    name: agentContainerName,
    image: task.agent.image,
    imagePullPolicy: config.imagePullPolicy,
    ...(bridgeCommand ? { command: bridgeCommand } : {}),
    env: [
      ...Object.entries(task.agent.env)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, value]): V1EnvVar => ({ name: key, value })),
      ...agentSidecarEnv(wiring),
    ],
    volumeMounts: [sharedVolumeMount],
    resources: agentResources(task),
    securityContext: restrictedContainer(),
  };

  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, labels, annotations },
    spec: {
      // Retries are the orchestrator's: it decides per failure and gives each attempt its own Job.
      backoffLimit: 0,
      activeDeadlineSeconds: Math.max(1, Math.ceil(task.timeoutMs / 1000)),
      ttlSecondsAfterFinished: config.jobTtlSeconds,
      template: {
        metadata: { labels, annotations },
        spec: {
          restartPolicy: "Never",
          // Agents talk to the mesh only through the sidecar, with the run token; they need no API access.
          automountServiceAccountToken: false,
          ...(config.serviceAccountName ? { serviceAccountName: config.serviceAccountName } : {}),
          enableServiceLinks: false,
          ...gpuPlacement(gpuCount(task), config.gpuScheduling),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: config.runAsUser,
            runAsGroup: config.runAsUser,
            fsGroup: config.runAsUser,
            seccompProfile: { type: "RuntimeDefault" },
          },
          initContainers: [sidecarContainer(wiring)],
          containers: [agent],
          volumes: sidecarVolumes(wiring, task.resources.ephemeralStorage),
        },
      },
    },
  };
}

/**
 * The attempt's Secret, owned by its Job so Kubernetes deletes them together: the sidecar's settings
 * for this attempt, its inline inputs (a file, however large), the run token (the sidecar's only) and
 * the pod-local token the agent presents to the sidecar. The pod reads it through secretKeyRefs and
 * a volume, so none of it is written into the Job.
 */
export function buildRunSecret(task: NodeTask, job: { readonly name: string; readonly uid: string }, sidecarToken: string): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name: job.name,
      labels: attemptLabels(task),
      ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: job.name, uid: job.uid, blockOwnerDeletion: true }],
    },
    stringData: { ...attemptSettings(task), [sidecarTokenKey]: sidecarToken },
  };
}

/** What the API server accepts in one Secret's values. */
export const maxSecretBytes = 1024 * 1024;

/** The size the API server counts for `secret`: its values, in bytes. */
export function secretBytes(secret: V1Secret): number {
  return Object.values(secret.stringData ?? {}).reduce((sum, value) => sum + Buffer.byteLength(value), 0);
}

/** The sidecar's per-attempt settings; where the gateway and the shared dir are is the pod's, not the attempt's. */
function attemptSettings(task: NodeTask): Record<string, string> {
  const {
    MENTATLAB_GATEWAY_URL: _gateway,
    MENTATLAB_SHARED_DIR: _shared,
    MENTATLAB_INPUTS_JSON: inputs,
    ...settings
  } = sidecarEnv({
    runId: task.runId,
    nodeId: task.nodeId,
    attempt: task.attempt,
    workspace: task.workspace,
    agentId: task.agent.id,
    agentVersion: task.agent.version,
    gatewayUrl: "",
    runToken: task.runToken,
    sharedDir: "",
    inputs: task.inputs,
    params: task.params,
    outputPins: Object.fromEntries(task.agent.outputs.map((pin) => [pin.name, pin.type])),
    outputStreams: task.outputStreams,
  });
  return { ...settings, [inputsKey]: inputs ?? "{}" };
}

export function attemptLabels(task: Pick<NodeTask, "runId" | "nodeId" | "attempt" | "workspace">): Record<string, string> {
  return {
    [labelKeys.managedBy]: managedBy,
    [labelKeys.run]: labelValue(task.runId),
    [labelKeys.node]: labelValue(task.nodeId),
    [labelKeys.attempt]: String(task.attempt),
    [labelKeys.workspace]: labelValue(task.workspace),
  };
}

/** Requests equal limits: the scheduler places the agent where its whole profile fits. */
function agentResources(task: NodeTask): V1ResourceRequirements {
  const amounts: Record<string, string> = {
    cpu: task.resources.cpu,
    memory: task.resources.memory,
    "ephemeral-storage": task.resources.ephemeralStorage,
  };
  const gpus = gpuCount(task);
  if (gpus > 0) amounts["nvidia.com/gpu"] = String(gpus);
  return { requests: { ...amounts }, limits: { ...amounts } };
}
