import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { PinType, type PinValue, PinValueSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { MapFailurePolicy, type MapSpec } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { jsonOf, jsonPinValue, textPinValue } from "../../agent-contract/pin-values.js";
import { pinTypeName } from "../../agent-contract/pins.js";
import { valueFitsPin } from "../../agent-contract/pin-compat.js";

/** Most items a mapped node may run at once (MapSpec.concurrency). */
export const maxMapConcurrency = 64;
/** Most items in one list, so a node's per-item state stays a size a run snapshot can carry. */
export const maxMapItems = 10_000;

/** How many of a mapped node's items may run at once. */
export function mapConcurrency(spec: MapSpec): number {
  return spec.concurrency ?? 1;
}

export function failsFast(spec: MapSpec): boolean {
  return spec.onFailure !== MapFailurePolicy.CONTINUE;
}

/**
 * The items of the list bound to a mapped pin of `type`, each as that pin's value, or a string
 * saying why the value is not such a list. The list is a `json` value: strings for a text pin, any
 * JSON for a json pin, a PinValue's JSON form (`{"media": …}`, `{"inlineBytes": …}`) for bytes pins.
 */
export function listItems(value: PinValue, type: PinType): PinValue[] | string {
  if (value.value.case !== "json" || value.value.value.kind.case !== "listValue")
    return `a mapped input takes a json list, not a ${value.value.case === "json" ? "json value that is not a list" : `${value.value.case ?? "missing"} value`}`;
  const list = jsonOf(value.value.value) as JsonValue[];
  if (list.length > maxMapItems) return `the list has ${list.length} items, more than ${maxMapItems}`;
  const items: PinValue[] = [];
  for (const [index, item] of list.entries()) {
    const pinValue = itemValue(item, type);
    if (!pinValue) return `item ${index} does not fit a ${pinTypeName(type)} pin: ${itemHint(type)}`;
    items.push(pinValue);
  }
  return items;
}

function itemValue(item: JsonValue, type: PinType): PinValue | undefined {
  if (type === PinType.JSON) return jsonPinValue(item);
  if (type === PinType.TEXT) return typeof item === "string" ? textPinValue(item) : undefined;
  try {
    const value = fromJson(PinValueSchema, item);
    return valueFitsPin(value, type) ? value : undefined;
  } catch {
    return undefined;
  }
}

function itemHint(type: PinType): string {
  if (type === PinType.TEXT) return "give a string";
  return 'give {"media": {"id": …, "sha256": …}} (or {"inlineBytes": "<base64>"} for binary)';
}

/** A list of item values as one `json` value, in the form `listItems` reads (null for an item without a value). */
export function collectList(values: readonly (PinValue | undefined)[]): PinValue {
  return jsonPinValue(values.map((value) => (value ? itemJson(value) : null)));
}

function itemJson(value: PinValue): JsonValue {
  switch (value.value.case) {
    case "text":
      return value.value.value;
    case "json":
      return jsonOf(value.value.value);
    default:
      return toJson(PinValueSchema, value);
  }
}
