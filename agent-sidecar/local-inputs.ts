import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create, toJsonString } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { PinType, type PinValue } from "../gen/mentatlab/v1/common_pb.js";
import { LocalInputSchema, type LocalInput } from "../gen/mentatlab/v1/sidecar_pb.js";
import { downloadToFile, type DownloadOptions } from "./download.js";
import type { GatewayClients } from "./gateway-clients.js";
import { extensionFor } from "./media-paths.js";

const pinName = /^[a-z][a-z0-9_]{0,62}$/;

/**
 * Makes the node's inputs local before the agent starts: media is downloaded (verified) into
 * `<sharedDir>/inputs/`, text and JSON are written there too (as `<pin>.txt` / `<pin>.json`) so plain
 * agents and tools can read them as files. Downloads run one after another to keep disk and memory flat.
 */
export async function prepareLocalInputs(
  storage: GatewayClients["storage"],
  inputs: ReadonlyMap<string, PinValue>,
  sharedDir: string,
  options: DownloadOptions,
): Promise<Map<string, LocalInput>> {
  const dir = join(sharedDir, "inputs");
  await mkdir(dir, { recursive: true });
  const local = new Map<string, LocalInput>();
  for (const [pin, value] of inputs) {
    // Pin names become file names: only the registry's pin names, never a path.
    if (!pinName.test(pin)) throw new Error(`input pin name ${JSON.stringify(pin)} is not a pin name (${pinName.source})`);
    local.set(pin, await localize(pin, value));
  }
  return local;

  async function localize(pin: string, value: PinValue): Promise<LocalInput> {
    switch (value.value.case) {
      case "text":
        await writeFile(join(dir, `${pin}.txt`), value.value.value);
        return create(LocalInputSchema, { type: PinType.TEXT, value: { case: "text", value: value.value.value } });
      case "json":
        await writeFile(join(dir, `${pin}.json`), toJsonString(ValueSchema, value.value.value));
        return create(LocalInputSchema, { type: PinType.JSON, value: { case: "json", value: value.value.value } });
      case "inlineBytes": {
        const path = join(dir, `${pin}.bin`);
        await writeFile(path, value.value.value);
        return create(LocalInputSchema, { type: PinType.BINARY, value: { case: "filePath", value: path } });
      }
      case "media": {
        const ref = value.value.value;
        const path = join(dir, `${pin}${extensionFor(ref.mimeType, ref.filename)}`);
        await downloadToFile(storage, ref, path, options);
        return create(LocalInputSchema, { type: pinTypeOf(ref.mimeType), value: { case: "filePath", value: path }, ref });
      }
      case "stream":
        return create(LocalInputSchema, { type: PinType.STREAM, value: { case: "stream", value: value.value.value } });
      default:
        throw new Error(`input ${pin} has no value`);
    }
  }
}

function pinTypeOf(mimeType: string): PinType {
  if (mimeType.startsWith("image/")) return PinType.IMAGE;
  if (mimeType.startsWith("audio/")) return PinType.AUDIO;
  if (mimeType.startsWith("video/")) return PinType.VIDEO;
  return PinType.BINARY;
}
