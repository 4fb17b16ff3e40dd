import { PinType, type PinValue } from "../gen/mentatlab/v1/common_pb.js";
import { isMediaPin } from "./pins.js";

/**
 * Which output pin types may feed which input pin types. Same type always; beyond that only
 * conversions that lose nothing and need no agent:
 * - image, audio, video → binary: the MediaRef is passed as is (a binary pin takes offloaded bytes as a MediaRef);
 * - text → json: the text becomes a JSON string.
 * Everything else (e.g. image → video, json → text, anything ↔ stream) is a mismatch.
 */
export function pinTypesCompatible(from: PinType, to: PinType): boolean {
  if (from === to) return true;
  if (to === PinType.BINARY) return isMediaPin(from);
  return from === PinType.TEXT && to === PinType.JSON;
}

/** The PinValue shapes a pin of `type` accepts (before edge processing). */
export function valueFitsPin(value: PinValue, type: PinType): boolean {
  switch (value.value.case) {
    case "text":
      return type === PinType.TEXT || type === PinType.JSON;
    case "json":
      return type === PinType.JSON;
    case "inlineBytes":
      return type === PinType.BINARY;
    case "media":
      return type === PinType.BINARY || isMediaPin(type);
    case "stream":
      return type === PinType.STREAM;
    default:
      return false;
  }
}
