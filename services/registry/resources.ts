import { type AgentManifest, ResourceProfile } from "../../gen/mentatlab/v1/registry_pb.js";
import { formatBytes, formatMillicores, parseQuantity } from "./quantity.js";

const GiB = 2 ** 30;

/** Requests/limits for one run of an agent, in Kubernetes quantities and in plain numbers. */
export interface ResolvedResources {
  /** CPU as millicores, e.g. `500m`. */
  readonly cpu: string;
  /** Memory, e.g. `1Gi`. */
  readonly memory: string;
  /** Ephemeral storage, e.g. `10Gi`. */
  readonly ephemeralStorage: string;
  /** `nvidia.com/gpu` count. */
  readonly gpu: number;
  readonly cpuCores: number;
  readonly memoryBytes: number;
  readonly ephemeralStorageBytes: number;
}

interface ProfileNumbers {
  readonly cpuCores: number;
  readonly memoryBytes: number;
  readonly ephemeralStorageBytes: number;
  readonly gpu: number;
}

/** The resource profiles a manifest can name, with what each asks of the scheduler. */
export const profileResources: Readonly<Record<Exclude<ResourceProfile, ResourceProfile.UNSPECIFIED>, ProfileNumbers>> = {
  [ResourceProfile.TEXT_PROCESSING]: { cpuCores: 0.5, memoryBytes: 1 * GiB, ephemeralStorageBytes: 1 * GiB, gpu: 0 },
  [ResourceProfile.IMAGE_PROCESSING]: { cpuCores: 2, memoryBytes: 4 * GiB, ephemeralStorageBytes: 10 * GiB, gpu: 0 },
  [ResourceProfile.AUDIO_PROCESSING]: { cpuCores: 1, memoryBytes: 2 * GiB, ephemeralStorageBytes: 5 * GiB, gpu: 0 },
  [ResourceProfile.VIDEO_PROCESSING]: { cpuCores: 4, memoryBytes: 8 * GiB, ephemeralStorageBytes: 50 * GiB, gpu: 1 },
};

/** Inputs above this size scale memory and ephemeral storage with the input. */
export const largeInputThresholdBytes = GiB;

/**
 * Resources for one run of `manifest` on `inputBytes` of input: the profile (text processing when
 * unset), overridden field by field by explicit `resources`, then, for inputs over 1 GiB, memory raised
 * to 4× and ephemeral storage to 10× the input size. Scaling only ever raises a value: a video agent's
 * 8Gi is not cut to 6Gi for a 1.5 GiB input. Assumes a validated manifest (quantities parse).
 */
export function calculateResources(manifest: Pick<AgentManifest, "resourceProfile" | "resources">, inputBytes: number): ResolvedResources {
  const profile = profileResources[manifest.resourceProfile === ResourceProfile.UNSPECIFIED ? ResourceProfile.TEXT_PROCESSING : manifest.resourceProfile];
  const explicit = manifest.resources;
  let cpuCores = quantityOr(explicit?.cpu, profile.cpuCores);
  let memoryBytes = quantityOr(explicit?.memory, profile.memoryBytes);
  let ephemeralStorageBytes = quantityOr(explicit?.ephemeralStorage, profile.ephemeralStorageBytes);
  const gpu = explicit && explicit.gpu > 0 ? explicit.gpu : profile.gpu;
  if (inputBytes > largeInputThresholdBytes) {
    memoryBytes = Math.max(memoryBytes, 4 * inputBytes);
    ephemeralStorageBytes = Math.max(ephemeralStorageBytes, 10 * inputBytes);
  }
  cpuCores = Math.max(cpuCores, 0.001);
  return {
    cpu: formatMillicores(cpuCores),
    memory: formatBytes(memoryBytes),
    ephemeralStorage: formatBytes(ephemeralStorageBytes),
    gpu,
    cpuCores,
    memoryBytes,
    ephemeralStorageBytes,
  };
}

function quantityOr(text: string | undefined, fallback: number): number {
  if (!text) return fallback;
  return parseQuantity(text) ?? fallback;
}
