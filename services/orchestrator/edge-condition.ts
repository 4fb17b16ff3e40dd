import type { PinValue } from "../../gen/mentatlab/v1/common_pb.js";
import type { EdgeCondition } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { jsonOf } from "../../agent-contract/pin-values.js";
import { canonicalJson } from "./canonical-json.js";

/**
 * Why a conditional edge is not taken, given its source node's outputs, or undefined when it is.
 * `edgePin` is the pin the edge carries, tested when the condition names none. Values compare as
 * canonical JSON (a text value as a JSON string), so key order never matters.
 */
export function edgeNotTaken(when: EdgeCondition, outputs: Readonly<Record<string, PinValue>>, node: string, edgePin: string): string | undefined {
  const pin = when.pin || edgePin;
  const value = outputs[pin]?.value;
  const actual = value?.case === "text" ? JSON.stringify(value.value) : value?.case === "json" ? canonicalJson(jsonOf(value.value)) : undefined;
  const expected = when.equals ? canonicalJson(jsonOf(when.equals)) : "null";
  if (actual === expected) return undefined;
  return `branch not taken: ${node}.${pin} is ${actual ?? "unset"}, not ${expected}`;
}
