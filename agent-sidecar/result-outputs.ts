import { stat } from "node:fs/promises";
import type { JsonValue } from "@bufbuild/protobuf";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { isMediaPin } from "./config.js";
import { pathUnder } from "./media-paths.js";
import type { OutputPublisher } from "./output-publisher.js";

/**
 * Turns a plain agent's final `{"result": …}` into output pins. An object whose keys name output pins
 * sets those pins; any other result goes to the only declared output pin (or to a pin named `result`
 * when none are declared). Strings on media and binary pins are paths of files under the shared
 * directory (relative to the agent's working directory), which are uploaded.
 */
export async function publishResult(
  result: JsonValue,
  outputPins: ReadonlyMap<string, PinType>,
  outputs: OutputPublisher,
  dirs: { readonly sharedDir: string; readonly workDir: string },
): Promise<void> {
  for (const [pin, value] of Object.entries(assignToPins(result, outputPins))) {
    await publishValue(pin, value, outputPins.get(pin));
  }

  async function publishValue(pin: string, value: JsonValue, type: PinType | undefined): Promise<void> {
    if (isMediaPin(type) || type === PinType.BINARY) {
      if (typeof value !== "string") {
        throw new Error(`result.${pin} must be the path of a file under ${dirs.sharedDir}, got ${JSON.stringify(value)}`);
      }
      await outputs.putFile(pin, await pathUnder(dirs.sharedDir, value, dirs.workDir), "");
    } else if (type === PinType.TEXT) {
      await outputs.putText(pin, typeof value === "string" ? value : JSON.stringify(value));
    } else if (type === undefined && typeof value === "string" && (await isSharedFile(value))) {
      await outputs.putFile(pin, await pathUnder(dirs.sharedDir, value, dirs.workDir), "");
    } else if (type === undefined && typeof value === "string") {
      await outputs.putText(pin, value);
    } else {
      await outputs.putJson(pin, value);
    }
  }

  async function isSharedFile(value: string): Promise<boolean> {
    try {
      const path = await pathUnder(dirs.sharedDir, value, dirs.workDir);
      return (await stat(path)).isFile();
    } catch {
      return false;
    }
  }
}

/** Which pin each part of the result belongs to. */
export function assignToPins(result: JsonValue, outputPins: ReadonlyMap<string, PinType>): Record<string, JsonValue> {
  // Stream pins are produced through the sidecar while running, never by the final result.
  const declared = [...outputPins].filter(([, type]) => type !== PinType.STREAM).map(([pin]) => pin);
  const isObject = typeof result === "object" && result !== null && !Array.isArray(result);
  if (isObject) {
    if (declared.length === 0) return result;
    const named = Object.fromEntries(Object.entries(result).filter(([key]) => outputPins.has(key)));
    if (Object.keys(named).length > 0) return named;
  }
  if (declared.length === 1 && declared[0] !== undefined) return { [declared[0]]: result };
  if (declared.length === 0) return { result };
  throw new Error(
    `the agent's result must be an object keyed by its output pins (${declared.join(", ")}), got ${JSON.stringify(result).slice(0, 200)}`,
  );
}
