import { Capability, ResourceProfile } from "../../gen/mentatlab/v1/registry_pb.js";

export const resourceProfileNames: ReadonlyMap<string, ResourceProfile> = new Map([
  ["text_processing", ResourceProfile.TEXT_PROCESSING],
  ["image_processing", ResourceProfile.IMAGE_PROCESSING],
  ["audio_processing", ResourceProfile.AUDIO_PROCESSING],
  ["video_processing", ResourceProfile.VIDEO_PROCESSING],
]);

export const capabilityNames: ReadonlyMap<string, Capability> = new Map([
  ["streaming", Capability.STREAMING],
  ["progress", Capability.PROGRESS],
  ["heartbeat", Capability.HEARTBEAT],
  ["gpu", Capability.GPU],
  ["storage", Capability.STORAGE],
  ["network", Capability.NETWORK],
]);

export function knownNames(names: ReadonlyMap<string, unknown>): string {
  return [...names.keys()].join(", ");
}
