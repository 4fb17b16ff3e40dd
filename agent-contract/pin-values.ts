import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Value, ValueSchema } from "@bufbuild/protobuf/wkt";
import { type PinValue, PinValueSchema } from "../gen/mentatlab/v1/common_pb.js";

/** A `json` PinValue holding `json`. */
export function jsonPinValue(json: JsonValue): PinValue {
  return create(PinValueSchema, { value: { case: "json", value: fromJson(ValueSchema, json) } });
}

export function textPinValue(text: string): PinValue {
  return create(PinValueSchema, { value: { case: "text", value: text } });
}

/** The plain JSON inside a google.protobuf.Value. */
export function jsonOf(value: Value): JsonValue {
  return toJson(ValueSchema, value);
}
