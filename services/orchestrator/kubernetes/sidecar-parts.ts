import type { V1Container, V1EnvVar, V1Probe, V1ResourceRequirements, V1SecurityContext, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { plainBridgeEnv } from "./plain-bridge.js";

// What puts the agent-sidecar beside an agent, shared by the Jobs the executor builds (./job-spec.ts)
// and the pods the injection webhook mutates (../../webhook/), so both get the same sidecar.

export const sidecarContainerName = "sidecar";
/** Keys of the attempt's Secret. Those named as variables become the sidecar's environment, one by one. */
export const runTokenKey = "MENTATLAB_RUN_TOKEN";
export const sidecarTokenKey = "MENTATLAB_SIDECAR_TOKEN";
/**
 * The pin values, as a file rather than a variable: Linux refuses to start a process with any one
 * environment string over 128 KiB, and inline text or JSON inputs can be larger.
 */
export const inputsKey = "inputs.json";
/** Settings without which the sidecar cannot work; the others have defaults in its config. */
const requiredKeys = ["MENTATLAB_RUN_ID", "MENTATLAB_NODE_ID", runTokenKey, sidecarTokenKey] as const;
const optionalKeys = [
  "MENTATLAB_ATTEMPT",
  "MENTATLAB_WORKSPACE",
  "MENTATLAB_AGENT_ID",
  "MENTATLAB_AGENT_VERSION",
  "MENTATLAB_PARAMS_JSON",
  "MENTATLAB_OUTPUT_PINS_JSON",
  "MENTATLAB_OUTPUT_STREAMS_JSON",
] as const;
/** Every key a Secret may hand the sidecar as a variable. */
export const attemptEnvKeys: readonly string[] = [...requiredKeys, ...optionalKeys];

/** The emptyDir both containers share: inputs, the agent's work dir, the sidecar's socket and spill files. */
const sharedDir = "/mentatlab/shared";
export const sharedVolumeName = "shared";
/** The attempt Secret's inputs file, mounted in the sidecar only. */
export const attemptVolumeName = "mentatlab-attempt";
const attemptDir = "/mentatlab/attempt";
const sidecarSocket = `${sharedDir}/sidecar.sock`;
/** The sidecar writes this file once it serves (agent-sidecar/main.ts), so it doubles as its readiness signal. */
const sidecarReadyFile = `${sharedDir}/sidecar.ready`;
/** Where a plain-contract agent's stdio crosses between the containers (./plain-bridge.ts). */
const plainBridgeDir = `${sharedDir}/plain`;

/** The sidecar relays bytes with bounded buffers (spilling to the shared volume), so it needs little. */
const sidecarResources: V1ResourceRequirements = {
  requests: { cpu: "100m", memory: "128Mi" },
  limits: { memory: "512Mi" },
};

export interface SidecarWiring {
  readonly image: string;
  readonly imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  /** Gateway URL as seen from inside the pod. */
  readonly gatewayUrl: string;
  /**
   * The attempt's Secret: the sidecar's variables (run id, node, params, the run token…) and its
   * inputs file, so attempt data and credentials never appear in the pod spec.
   */
  readonly secretName: string;
  /** The agent runs the plain contract behind the file bridge. */
  readonly plainBridge: boolean;
}

export const sharedVolumeMount: V1VolumeMount = { name: sharedVolumeName, mountPath: sharedDir };

/** The pod's volumes for the sidecar: the shared emptyDir and the attempt's inputs file. */
export function sidecarVolumes(wiring: SidecarWiring, sharedSizeLimit?: string): V1Volume[] {
  return [
    { name: sharedVolumeName, emptyDir: sharedSizeLimit ? { sizeLimit: sharedSizeLimit } : {} },
    // Readable by whatever uid the sidecar runs as; no other container mounts it.
    { name: attemptVolumeName, secret: { secretName: wiring.secretName, items: [{ key: inputsKey, path: inputsKey }], defaultMode: 0o444 } },
  ];
}

/** The native sidecar: an init container with restartPolicy Always, started before the agent and stopped once it ends. */
export function sidecarContainer(wiring: SidecarWiring): V1Container {
  return {
    name: sidecarContainerName,
    image: wiring.image,
    imagePullPolicy: wiring.imagePullPolicy,
    restartPolicy: "Always",
    env: [
      { name: "MENTATLAB_GATEWAY_URL", value: wiring.gatewayUrl },
      { name: "MENTATLAB_SHARED_DIR", value: sharedDir },
      { name: "MENTATLAB_SIDECAR_LISTEN", value: sidecarSocket },
      { name: "MENTATLAB_INPUTS_FILE", value: `${attemptDir}/${inputsKey}` },
      ...bridgeEnv(wiring),
      ...requiredKeys.map((key) => fromSecret(wiring, key, false)),
      ...optionalKeys.map((key) => fromSecret(wiring, key, true)),
    ],
    volumeMounts: [sharedVolumeMount, { name: attemptVolumeName, mountPath: attemptDir, readOnly: true }],
    // The agent container starts only after this probe passes, i.e. once inputs are downloaded and the socket serves.
    startupProbe: fileProbe(sidecarReadyFile, 1, 3600),
    readinessProbe: fileProbe(sidecarReadyFile, 10, 3),
    resources: sidecarResources,
    securityContext: restrictedContainer(),
  };
}

/** What an agent container needs to find and trust its sidecar; never the run token. */
export function agentSidecarEnv(wiring: SidecarWiring): V1EnvVar[] {
  return [
    { name: "MENTATLAB_SIDECAR_ADDRESS", value: sidecarSocket },
    fromSecret(wiring, sidecarTokenKey, false),
    { name: "MENTATLAB_SHARED_DIR", value: sharedDir },
    { name: "MENTATLAB_WORK_DIR", value: `${sharedDir}/work` },
    fromSecret(wiring, "MENTATLAB_RUN_ID", false),
    fromSecret(wiring, "MENTATLAB_NODE_ID", false),
    fromSecret(wiring, "MENTATLAB_ATTEMPT", true),
    ...bridgeEnv(wiring),
  ];
}

export function restrictedContainer(): V1SecurityContext {
  return { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };
}

function fromSecret(wiring: SidecarWiring, key: string, optional: boolean): V1EnvVar {
  return { name: key, valueFrom: { secretKeyRef: { name: wiring.secretName, key, ...(optional ? { optional } : {}) } } };
}

function bridgeEnv(wiring: SidecarWiring): V1EnvVar[] {
  return wiring.plainBridge ? [{ name: plainBridgeEnv, value: plainBridgeDir }] : [];
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
