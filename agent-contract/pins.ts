import { PinType } from "../gen/mentatlab/v1/common_pb.js";

/** Pin types by the lower-case name manifests, flows and MENTATLAB_OUTPUT_PINS_JSON give them. */
export const pinTypeNames: ReadonlyMap<string, PinType> = new Map([
  ["text", PinType.TEXT],
  ["json", PinType.JSON],
  ["binary", PinType.BINARY],
  ["image", PinType.IMAGE],
  ["audio", PinType.AUDIO],
  ["video", PinType.VIDEO],
  ["stream", PinType.STREAM],
]);

const namesByPinType = new Map([...pinTypeNames].map(([name, type]) => [type, name]));

/**
 * The name of a pin type; "unspecified" for PIN_TYPE_UNSPECIFIED, which no manifest can declare, so
 * messages still read and the name never parses back into a type.
 */
export function pinTypeName(type: PinType): string {
  return namesByPinType.get(type) ?? "unspecified";
}

/**
 * Whether a pin carries media: image, audio or video, which must declare accepted MIME types and
 * limits, and whose values are always stored and passed as a MediaRef (never inline bytes).
 */
export function isMediaPin(type: PinType | undefined): type is PinType.IMAGE | PinType.AUDIO | PinType.VIDEO {
  return type === PinType.IMAGE || type === PinType.AUDIO || type === PinType.VIDEO;
}
