import { PinType } from "../gen/mentatlab/v1/common_pb.js";

/** Pin types by the name MENTATLAB_OUTPUT_PINS_JSON (and an agent manifest) gives them. */
export const pinTypesByName: Readonly<Record<string, PinType>> = {
  text: PinType.TEXT,
  json: PinType.JSON,
  binary: PinType.BINARY,
  image: PinType.IMAGE,
  audio: PinType.AUDIO,
  video: PinType.VIDEO,
  stream: PinType.STREAM,
};

const namesByPinType = new Map(Object.entries(pinTypesByName).map(([name, type]) => [type, name]));

/** The name of a pin type in MENTATLAB_OUTPUT_PINS_JSON; undefined for PIN_TYPE_UNSPECIFIED. */
export function pinTypeName(type: PinType): string | undefined {
  return namesByPinType.get(type);
}
