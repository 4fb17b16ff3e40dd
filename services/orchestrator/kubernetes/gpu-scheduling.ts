import type { V1PodSpec, V1Toleration } from "@kubernetes/client-node";
import { Capability } from "../../../gen/mentatlab/v1/registry_pb.js";
import { ConfigError, type Env } from "../../shared/env.js";
import type { NodeTask } from "../executor.js";

/** Where pods that get a GPU may run; applied to those pods only, so CPU agents never wait for GPU nodes. */
export interface GpuScheduling {
  /** `MENTATLAB_K8S_GPU_NODE_SELECTOR`, default none: `key=value` pairs, comma-separated (e.g. `cloud.google.com/gke-accelerator=nvidia-l4`). */
  readonly nodeSelector: Readonly<Record<string, string>>;
  /** `MENTATLAB_K8S_GPU_TOLERATIONS`, default tolerating the `nvidia.com/gpu` NoSchedule taint GPU node pools carry: a JSON array of tolerations, `[]` for none. */
  readonly tolerations: readonly V1Toleration[];
  /** `MENTATLAB_K8S_GPU_RUNTIME_CLASS`, default none (the node's default runtime): e.g. `nvidia` with the NVIDIA GPU operator. */
  readonly runtimeClassName: string;
}

const defaultTolerations: readonly V1Toleration[] = [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }];
const effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
const tolerationFields = new Set(["key", "operator", "value", "effect", "tolerationSeconds"]);
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Reads the GPU scheduling settings; throws an error naming the variable to fix. */
export function gpuSchedulingFromEnv(env: Env): GpuScheduling {
  const runtimeClassName = env.MENTATLAB_K8S_GPU_RUNTIME_CLASS ?? "";
  if (runtimeClassName !== "" && (!dns1123Subdomain.test(runtimeClassName) || runtimeClassName.length > 253)) {
    throw new ConfigError("MENTATLAB_K8S_GPU_RUNTIME_CLASS", "a RuntimeClass name (a DNS-1123 subdomain)", runtimeClassName);
  }
  return {
    nodeSelector: nodeSelectorOf(env.MENTATLAB_K8S_GPU_NODE_SELECTOR ?? ""),
    tolerations: tolerationsOf(env.MENTATLAB_K8S_GPU_TOLERATIONS),
    runtimeClassName,
  };
}

/** GPUs the agent gets: its resources' (the video profile has one), and at least one when it declares the `gpu` capability. */
export function gpuCount(task: Pick<NodeTask, "resources" | "agent">): number {
  return Math.max(task.resources.gpu, task.agent.capabilities.includes(Capability.GPU) ? 1 : 0);
}

/** The pod spec fields that place a GPU pod; none for a pod without a GPU. */
export function gpuPlacement(gpus: number, scheduling: GpuScheduling): Pick<V1PodSpec, "nodeSelector" | "tolerations" | "runtimeClassName"> {
  if (gpus === 0) return {};
  return {
    ...(Object.keys(scheduling.nodeSelector).length > 0 ? { nodeSelector: { ...scheduling.nodeSelector } } : {}),
    ...(scheduling.tolerations.length > 0 ? { tolerations: scheduling.tolerations.map((t) => ({ ...t })) } : {}),
    ...(scheduling.runtimeClassName ? { runtimeClassName: scheduling.runtimeClassName } : {}),
  };
}

function nodeSelectorOf(raw: string): Record<string, string> {
  const selector: Record<string, string> = {};
  for (const pair of raw
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "")) {
    const eq = pair.indexOf("=");
    const key = eq > 0 ? pair.slice(0, eq).trim() : "";
    if (key === "") throw new ConfigError("MENTATLAB_K8S_GPU_NODE_SELECTOR", "key=value pairs separated by commas", raw, `"${pair}" is not one`);
    selector[key] = pair.slice(eq + 1).trim();
  }
  return selector;
}

function tolerationsOf(raw: string | undefined): readonly V1Toleration[] {
  if (raw === undefined || raw.trim() === "") return defaultTolerations;
  const fail = (why: string): never => {
    throw new ConfigError("MENTATLAB_K8S_GPU_TOLERATIONS", "a JSON array of tolerations ({key, operator, value, effect, tolerationSeconds})", raw, why);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return fail("not JSON");
  }
  if (!Array.isArray(parsed)) return fail("not an array");
  return parsed.map((item: unknown, i): V1Toleration => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) return fail(`[${i}] is not an object`);
    const t = item as Record<string, unknown>;
    const unknown = Object.keys(t).find((k) => !tolerationFields.has(k));
    if (unknown) return fail(`[${i}].${unknown} is not a toleration field`);
    const operator = t.operator ?? "Equal";
    if (operator !== "Equal" && operator !== "Exists") return fail(`[${i}].operator must be Equal or Exists`);
    for (const field of ["key", "value", "effect"] as const)
      if (t[field] !== undefined && typeof t[field] !== "string") return fail(`[${i}].${field} must be a string`);
    if (operator === "Exists" && t.value !== undefined && t.value !== "") return fail(`[${i}]: operator Exists takes no value`);
    if (t.effect !== undefined && t.effect !== "" && !effects.includes(t.effect as string)) return fail(`[${i}].effect must be one of ${effects.join(", ")}`);
    if (t.tolerationSeconds !== undefined && (!Number.isInteger(t.tolerationSeconds) || t.effect !== "NoExecute"))
      return fail(`[${i}].tolerationSeconds must be an integer, with effect NoExecute`);
    return t as V1Toleration;
  });
}
