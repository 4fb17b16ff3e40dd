import { isAbsolute, resolve } from "node:path";
import { create, type JsonValue } from "@bufbuild/protobuf";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { PinSchema, type Pin } from "../gen/mentatlab/v1/registry_pb.js";
import { outputFromPlain } from "../agent-contract/plain-contract.js";
import type { OutputPublisher } from "./output-publisher.js";

/**
 * Publishes one output of a plain agent (a key of its final `{"result": …}` or an `output` event),
 * converted by the plain contract's own rules: text must be a string, media is MediaRef JSON or
 * `{"path", "mime_type"}` of a local file (relative to the agent's working directory), which is uploaded.
 * Throws a message naming the pin when the value does not fit it.
 */
export async function publishPlainOutput(
  name: string,
  raw: JsonValue,
  outputPins: ReadonlyMap<string, PinType>,
  outputs: OutputPublisher,
  workDir: string,
): Promise<void> {
  const out = outputFromPlain(pinFor(name, raw, outputPins), raw);
  if ("error" in out) throw new Error(out.error);
  if ("value" in out) {
    await outputs.publish(name, out.value);
    return;
  }
  const path = isAbsolute(out.file.path) ? out.file.path : resolve(workDir, out.file.path);
  await outputs.putFile(name, path, out.file.mimeType);
}

/**
 * Where a bridged sidecar keeps which result pins are published, so that one restarted while publishing
 * the result publishes only the rest (agent-sidecar/bridge-progress.ts).
 */
export interface ResultProgress {
  readonly published: ReadonlySet<string>;
  /** Records that a pin's output is acknowledged; resolves once that is on the shared volume. */
  record(pin: string): Promise<void>;
}

/**
 * Publishes every pin of a plain agent's final result, which must be an object keyed by output pin, but
 * for those `progress` says are published already.
 */
export async function publishPlainResult(
  result: JsonValue,
  outputPins: ReadonlyMap<string, PinType>,
  outputs: OutputPublisher,
  workDir: string,
  progress?: ResultProgress,
): Promise<void> {
  if (result === null) return;
  if (typeof result !== "object" || Array.isArray(result)) {
    throw new Error(`the result must be an object keyed by output pin name, got ${JSON.stringify(result).slice(0, 80)}`);
  }
  for (const [name, raw] of Object.entries(result)) {
    if (progress?.published.has(name)) continue;
    await publishPlainOutput(name, raw, outputPins, outputs, workDir);
    await progress?.record(name);
  }
}

/**
 * The declared pin, or — when the orchestrator declared none — one inferred from the value: `{"path"}`
 * is a file, a string is text, anything else JSON.
 */
export function pinFor(name: string, raw: JsonValue, outputPins: ReadonlyMap<string, PinType>): Pin {
  const declared = outputPins.get(name);
  if (declared !== undefined) return create(PinSchema, { name, type: declared });
  if (outputPins.size > 0) {
    throw new Error(`"${name}" is not an output pin (outputs: ${[...outputPins.keys()].join(", ")})`);
  }
  const isFile = typeof raw === "object" && raw !== null && !Array.isArray(raw) && typeof raw.path === "string";
  const type = isFile ? PinType.BINARY : typeof raw === "string" ? PinType.TEXT : PinType.JSON;
  return create(PinSchema, { name, type });
}
