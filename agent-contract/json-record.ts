import type { JsonValue } from "@bufbuild/protobuf";

/** A JSON object: what every document of the contract (manifest, flow, stdin spec, result line) is made of. */
export type JsonRecord = { [key: string]: JsonValue };

export function isRecord(value: JsonValue | undefined): value is JsonRecord {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
