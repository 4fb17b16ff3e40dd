import { BackpressurePolicy } from "../../gen/mentatlab/v1/common_pb.js";
import { Capability, ResourceProfile } from "../../gen/mentatlab/v1/registry_pb.js";
import type { RecordReader } from "./document-reader.js";
import type { Violations } from "./violations.js";

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

export const backpressureNames: ReadonlyMap<string, BackpressurePolicy> = new Map([
  ["block", BackpressurePolicy.BLOCK],
  ["drop_oldest", BackpressurePolicy.DROP_OLDEST],
  ["fail", BackpressurePolicy.FAIL],
]);

/** The `backpressure` field of a flow edge or a stream pin, by name; unset when absent. */
export function readBackpressure(r: RecordReader, violations: Violations): BackpressurePolicy {
  const name = r.string("backpressure").toLowerCase().replace("-", "_");
  if (!name) return BackpressurePolicy.UNSPECIFIED;
  const policy = backpressureNames.get(name);
  if (policy === undefined) {
    violations.add(
      r.child("backpressure"),
      "stream.backpressure_known",
      `unknown backpressure policy "${name}"`,
      `use one of: ${knownNames(backpressureNames)}`,
    );
    return BackpressurePolicy.UNSPECIFIED;
  }
  return policy;
}

export function knownNames(names: ReadonlyMap<string, unknown>): string {
  return [...names.keys()].join(", ");
}
