import type { V1Container, V1EnvVar, V1Job, V1Probe, V1ResourceRequirements, V1Secret, V1SecurityContext } from "@kubernetes/client-node";
import { sidecarEnv } from "../../../agent-contract/sidecar-env.js";
import type { NodeTask } from "../executor.js";
import type { KubernetesExecutorConfig } from "./config.js";
import { jobName, labelValue } from "./job-name.js";
import { plainBridgeCommand, plainBridgeEnv } from "./plain-bridge.js";

export const agentContainerName = "agent";
export const sidecarContainerName = "sidecar";
/** Keys of the per-Job Secret. */
export const runTokenKey = "run-token";
export const sidecarTokenKey = "sidecar-token";

/** The emptyDir both containers share: inputs, the agent's work dir, the sidecar's socket and spill files. */
const sharedDir = "/mentatlab/shared";
const sidecarSocket = `${sharedDir}/sidecar.sock`;
/** The sidecar writes this file once it serves (agent-sidecar/main.ts), so it doubles as its readiness signal. */
const sidecarReadyFile = `${sharedDir}/sidecar.ready`;
const sharedVolume = "shared";
/** Where a plain-contract agent's stdio crosses between the containers (./plain-bridge.ts). */
const plainBridgeDir = `${sharedDir}/plain`;

/** Labels every object of one attempt carries, so a run's Jobs, pods and Secrets can be selected. */
export const labelKeys = {
  managedBy: "app.kubernetes.io/managed-by",
  run: "mentatlab.dev/run",
  node: "mentatlab.dev/node",
  attempt: "mentatlab.dev/attempt",
  workspace: "mentatlab.dev/workspace",
} as const;
const managedBy = "mentatlab-orchestrator";

/** The sidecar relays bytes with bounded buffers (spilling to the shared volume), so it needs little. */
const sidecarResources: V1ResourceRequirements = {
  requests: { cpu: "100m", memory: "128Mi" },
  limits: { memory: "512Mi" },
};

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
  const bridgeEnv: V1EnvVar[] = bridgeCommand ? [{ name: plainBridgeEnv, value: plainBridgeDir }] : [];
  const tokenFrom = (key: string): V1EnvVar["valueFrom"] => ({ secretKeyRef: { name, key } });
  const plainSidecarEnv = Object.entries(
    sidecarEnv({
      runId: task.runId,
      nodeId: task.nodeId,
      attempt: task.attempt,
      workspace: task.workspace,
      agentId: task.agent.id,
      agentVersion: task.agent.version,
      gatewayUrl: config.gatewayUrl,
      runToken: "",
      sharedDir,
      inputs: task.inputs,
      params: task.params,
      outputPins: Object.fromEntries(task.agent.outputs.map((pin) => [pin.name, pin.type])),
      outputStreams: task.outputStreams,
      listen: sidecarSocket,
    }),
  )
    .filter(([key]) => key !== "MENTATLAB_RUN_TOKEN")
    .map(([key, value]): V1EnvVar => ({ name: key, value }));

  const sidecar: V1Container = {
    name: sidecarContainerName,
    image: config.sidecarImage,
    imagePullPolicy: config.imagePullPolicy,
    // A native sidecar: started before the agent, stopped once the agent ends, never keeping the Job alive.
    restartPolicy: "Always",
    env: [
      ...plainSidecarEnv,
      ...bridgeEnv,
      { name: "MENTATLAB_RUN_TOKEN", valueFrom: tokenFrom(runTokenKey) },
      { name: "MENTATLAB_SIDECAR_TOKEN", valueFrom: tokenFrom(sidecarTokenKey) },
    ],
    volumeMounts: [{ name: sharedVolume, mountPath: sharedDir }],
    // The agent container starts only after this probe passes, i.e. once inputs are downloaded and the socket serves.
    startupProbe: fileProbe(sidecarReadyFile, 1, 3600),
    readinessProbe: fileProbe(sidecarReadyFile, 10, 3),
    resources: sidecarResources,
    securityContext: containerSecurity(),
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
      { name: "MENTATLAB_SIDECAR_ADDRESS", value: sidecarSocket },
      { name: "MENTATLAB_SIDECAR_TOKEN", valueFrom: tokenFrom(sidecarTokenKey) },
      { name: "MENTATLAB_SHARED_DIR", value: sharedDir },
      { name: "MENTATLAB_WORK_DIR", value: `${sharedDir}/work` },
      { name: "MENTATLAB_RUN_ID", value: task.runId },
      { name: "MENTATLAB_NODE_ID", value: task.nodeId },
      { name: "MENTATLAB_ATTEMPT", value: String(task.attempt) },
      ...bridgeEnv,
    ],
    volumeMounts: [{ name: sharedVolume, mountPath: sharedDir }],
    resources: agentResources(task),
    securityContext: containerSecurity(),
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
          securityContext: {
            runAsNonRoot: true,
            runAsUser: config.runAsUser,
            runAsGroup: config.runAsUser,
            fsGroup: config.runAsUser,
            seccompProfile: { type: "RuntimeDefault" },
          },
          initContainers: [sidecar],
          containers: [agent],
          volumes: [{ name: sharedVolume, emptyDir: { sizeLimit: task.resources.ephemeralStorage } }],
        },
      },
    },
  };
}

/**
 * The attempt's credentials, owned by its Job so Kubernetes deletes them with it: the run token (the
 * sidecar's only) and the pod-local token the agent presents to the sidecar.
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
    stringData: { [runTokenKey]: task.runToken, [sidecarTokenKey]: sidecarToken },
  };
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
  if (task.resources.gpu > 0) amounts["nvidia.com/gpu"] = String(task.resources.gpu);
  return { requests: { ...amounts }, limits: { ...amounts } };
}

/** `node -e` rather than `test -f`: the sidecar image is a Node image that may have no shell. */
function fileProbe(path: string, periodSeconds: number, failureThreshold: number): V1Probe {
  return {
    exec: { command: ["node", "-e", "require('node:fs').accessSync(process.argv[1])", path] },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 5,
  };
}

function containerSecurity(): V1SecurityContext {
  return { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };
}
