import type { V1Container, V1Pod } from "@kubernetes/client-node";
import {
  agentSidecarEnv,
  attemptVolumeName,
  sharedVolumeMount,
  sharedVolumeName,
  sidecarContainer,
  sidecarContainerName,
  sidecarVolumes,
  type SidecarWiring,
} from "../orchestrator/kubernetes/index.js";
import { appendAll, pointer, type AddOperation } from "./json-patch.js";

/** The label that asks for a sidecar (the webhook's objectSelector matches it too). */
export const injectLabel = "mentatlab.io/inject-sidecar";
/** Names the attempt's Secret: the sidecar's settings, inputs and credentials, keys as the executor's Job Secrets have them. */
export const attemptSecretAnnotation = "mentatlab.io/attempt-secret";
/** Written by the patch, so a pod seen again (a reinvocation, a re-applied manifest) is left alone. */
export const injectedAnnotation = "mentatlab.io/sidecar-injected";

/** What the API server accepts as a Secret name. */
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export type InjectionDecision =
  | { readonly kind: "unchanged"; readonly why: string }
  | { readonly kind: "patch"; readonly patch: readonly AddOperation[] }
  | { readonly kind: "denied"; readonly message: string };

/**
 * What to do with a pod being created: nothing (not labelled, or already injected), refuse it (it
 * asks for a sidecar it cannot get), or the JSON Patch that adds the sidecar, the shared volume and
 * the agent's environment. Pure: the same pod always gets the same answer, dry run or not.
 */
export function decideInjection(pod: V1Pod, sidecar: WebhookSidecar): InjectionDecision {
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  if (labels[injectLabel] !== "true") return { kind: "unchanged", why: `not labelled ${injectLabel}: "true"` };
  const spec = pod.spec;
  if (!spec) return { kind: "denied", message: "the pod has no spec" };
  if (annotations[injectedAnnotation] === "true" || (spec.initContainers ?? []).some((c) => c.name === sidecarContainerName)) {
    return { kind: "unchanged", why: "the sidecar is already injected" };
  }
  const secretName = annotations[attemptSecretAnnotation] ?? "";
  if (!dns1123Subdomain.test(secretName) || secretName.length > 253) {
    return {
      kind: "denied",
      message: `a pod labelled ${injectLabel}: "true" needs the annotation ${attemptSecretAnnotation} naming its attempt's Secret (a DNS-1123 subdomain), got "${secretName}"`,
    };
  }
  const taken = [
    ...(spec.volumes ?? []).map((v) => `volume ${v.name}`),
    ...[...spec.containers, ...(spec.initContainers ?? [])].map((c) => `container ${c.name}`),
  ];
  const needed = [`volume ${sharedVolumeName}`, `volume ${attemptVolumeName}`, `container ${sidecarContainerName}`];
  const clash = taken.find((what) => needed.includes(what));
  if (clash) return { kind: "denied", message: `the pod already has a ${clash}, which the injected sidecar needs: rename it` };

  const wiring: SidecarWiring = { ...sidecar, secretName, plainBridge: false };
  const agentEnv = agentSidecarEnv(wiring);
  const patch: AddOperation[] = [
    ...appendAll(spec.initContainers, ["spec", "initContainers"], [sidecarContainer(wiring)]),
    ...appendAll(spec.volumes, ["spec", "volumes"], sidecarVolumes(wiring)),
    ...spec.containers.flatMap((container: V1Container, i) => [
      ...appendAll(container.env, ["spec", "containers", i, "env"], agentEnv),
      ...appendAll(container.volumeMounts, ["spec", "containers", i, "volumeMounts"], [sharedVolumeMount]),
    ]),
    pod.metadata?.annotations === undefined
      ? { op: "add", path: pointer("metadata", "annotations"), value: { [injectedAnnotation]: "true" } }
      : { op: "add", path: pointer("metadata", "annotations", injectedAnnotation), value: "true" },
  ];
  return { kind: "patch", patch };
}

/** The webhook-wide part of the sidecar's wiring; the Secret comes from each pod. */
export type WebhookSidecar = Pick<SidecarWiring, "image" | "imagePullPolicy" | "gatewayUrl">;
