import * as k8s from "@kubernetes/client-node";
import { dns1123Label, dns1123Subdomain, labelProblems, unknownFields } from "./kube-rules.js";

/** The header every Kubernetes object carries. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: { readonly name?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly [field: string]: unknown;
}

export function isKubeObject(value: unknown): value is KubeObject {
  const object = value as Partial<KubeObject> | null;
  return typeof object === "object" && object !== null && typeof object.apiVersion === "string" && typeof object.kind === "string";
}

/** `path: problem` lines for everything the API server would reject; empty when the object is valid. */
export async function validateKubeObject(object: KubeObject): Promise<string[]> {
  const at = `${object.kind}/${object.metadata?.name ?? "?"}`;
  const problems = [...(await schemaProblems(object)), ...unknownFields(object, clientModelName(object), "")];
  problems.push(...nameProblems(object), ...labelProblems(object.metadata, "metadata"));
  return problems.map((problem) => `${at}${problem.startsWith(":") ? "" : " "}${problem}`);
}

/** Checks only the fields present, for patches: no unknown fields, no bad labels. */
export function validatePartialObject(object: KubeObject): string[] {
  const at = `${object.kind}/${object.metadata?.name ?? "?"}`;
  return [...unknownFields(object, clientModelName(object), ""), ...labelProblems(object.metadata, "metadata")].map((problem) => `${at} ${problem}`);
}

function groupVersion(object: KubeObject): { group: string; version: string } {
  const [first, second] = object.apiVersion.split("/");
  return second === undefined ? { group: "", version: first ?? "" } : { group: first ?? "", version: second };
}

type ModelClass = new (data: unknown) => { validate(): void };

/** Types, required fields, enums and quantities, from the OpenAPI schemas compiled by kubernetes-models. */
async function schemaProblems(object: KubeObject): Promise<string[]> {
  const { group, version } = groupVersion(object);
  const specifier = group === "" ? `kubernetes-models/${version}/${object.kind}` : `kubernetes-models/${group}/${version}/${object.kind}`;
  let model: ModelClass | undefined;
  try {
    const module = (await import(specifier)) as Record<string, ModelClass | undefined>;
    model = module[object.kind];
  } catch {
    model = undefined;
  }
  if (model === undefined) return [`: ${object.apiVersion} ${object.kind} is not a built-in Kubernetes kind`];
  try {
    new model(withUnfoldedBase64(object)).validate();
    return [];
  } catch (err) {
    return [`: ${err instanceof Error ? err.message : String(err)}`];
  }
}

/**
 * kustomize folds long base64 values over several lines; the API server's decoder skips line breaks,
 * the schema's `byte` format does not, so unfold them before checking.
 */
function withUnfoldedBase64(object: KubeObject): KubeObject {
  const field = object.kind === "Secret" ? "data" : object.kind === "ConfigMap" ? "binaryData" : undefined;
  const values = field ? (object[field] as Record<string, string> | undefined) : undefined;
  if (!field || !values) return object;
  return { ...object, [field]: Object.fromEntries(Object.entries(values).map(([key, value]) => [key, value.replace(/[\r\n]/g, "")])) };
}

/** `V1Deployment` for apps/v1 Deployment: the client library's model, whose attribute map lists every known field. */
function clientModelName(object: KubeObject): string {
  const { version } = groupVersion(object);
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${object.kind}`;
}

/** IANA service names: what a named container or Service port must be. */
const portNamePattern = /^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?=[a-z0-9])){0,14}$/;
/** Kinds whose names become DNS labels (Service host names, a Job's pod label). */
const labelNamedKinds = new Set(["Service", "Namespace", "Job", "StatefulSet"]);

function nameProblems(object: KubeObject): string[] {
  const name = object.metadata?.name ?? "";
  const problems: string[] = [];
  if (labelNamedKinds.has(object.kind)) {
    if (!dns1123Label.test(name) || name.length > 63) problems.push(`metadata.name: "${name}" must be a DNS-1123 label of at most 63 characters`);
  } else if (!dns1123Subdomain.test(name) || name.length > 253) {
    problems.push(`metadata.name: "${name}" must be a DNS-1123 subdomain`);
  }
  const pod = podSpecOf(object);
  if (pod) {
    for (const { container, path } of containersOf(pod)) {
      if (!dns1123Label.test(container.name)) problems.push(`${path}.name: "${container.name}" must be a DNS-1123 label`);
      for (const port of container.ports ?? []) {
        if (port.name !== undefined && !portNamePattern.test(port.name)) problems.push(`${path}.ports[${port.name}]: not a valid port name`);
      }
      const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
      for (const mount of container.volumeMounts ?? [])
        if (!volumes.has(mount.name) && !claimTemplates(object).has(mount.name)) problems.push(`${path}.volumeMounts[${mount.name}]: no such volume`);
    }
  }
  for (const port of object.kind === "Service" ? ((object.spec as k8s.V1ServiceSpec | undefined)?.ports ?? []) : []) {
    if (port.name !== undefined && !portNamePattern.test(port.name)) problems.push(`spec.ports[${port.name}]: not a valid port name`);
  }
  return problems;
}

function claimTemplates(object: KubeObject): Set<string> {
  if (object.kind !== "StatefulSet") return new Set();
  return new Set(((object.spec as k8s.V1StatefulSetSpec | undefined)?.volumeClaimTemplates ?? []).map((t) => t.metadata?.name ?? ""));
}

/** The pod template of a workload, or the pod itself. */
export function podSpecOf(object: KubeObject): k8s.V1PodSpec | undefined {
  switch (object.kind) {
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job":
      return (object.spec as { template?: k8s.V1PodTemplateSpec } | undefined)?.template?.spec;
    case "CronJob":
      return (object.spec as k8s.V1CronJobSpec | undefined)?.jobTemplate.spec?.template.spec;
    case "Pod":
      return object.spec as k8s.V1PodSpec | undefined;
    default:
      return undefined;
  }
}

export function containersOf(pod: k8s.V1PodSpec): { container: k8s.V1Container; path: string; init: boolean }[] {
  return [
    ...(pod.initContainers ?? []).map((container) => ({ container, path: `initContainers[${container.name}]`, init: true })),
    ...pod.containers.map((container) => ({ container, path: `containers[${container.name}]`, init: false })),
  ];
}
