import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { Capability, ResourceProfile } from "../../gen/mentatlab/v1/registry_pb.js";

/** The lower-case names manifests and flows use for enum values. */
export const pinTypeNames: ReadonlyMap<string, PinType> = new Map([
  ["text", PinType.TEXT],
  ["json", PinType.JSON],
  ["binary", PinType.BINARY],
  ["image", PinType.IMAGE],
  ["audio", PinType.AUDIO],
  ["video", PinType.VIDEO],
  ["stream", PinType.STREAM],
]);

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

export function pinTypeName(type: PinType): string {
  for (const [name, value] of pinTypeNames) if (value === type) return name;
  return "unspecified";
}

export function isMediaPinType(type: PinType): boolean {
  return type === PinType.IMAGE || type === PinType.AUDIO || type === PinType.VIDEO;
}

export function knownNames(names: ReadonlyMap<string, unknown>): string {
  return [...names.keys()].join(", ");
}
