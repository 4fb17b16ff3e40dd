import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { fromJson, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { PinType, PinTypeSchema, type MediaRef, type PinValueSchema } from "../../../gen/mentatlab/v1/common_pb.js";
import { isMediaPin } from "../../../agent-contract/pins.js";
import type { CommandContext } from "./context.js";
import { CliError, ExitCode } from "./exit-codes.js";
import type { FlowNodeAgent } from "./flow-file.js";
import { enumLabel } from "./format.js";
import { uploadFile } from "./upload-file.js";

/** One `--input node.pin=VALUE` flag: `@path` (a file), `ref:<id>` (a stored object) or literal text. */
export interface InputSpec {
  /** `nodeId.pin`. */
  readonly key: string;
  readonly source: { readonly kind: "file" | "ref" | "literal"; readonly value: string };
}

export type PinValueInit = MessageInitShape<typeof PinValueSchema>;

/** Inline values (text, JSON, small binary) larger than this must be uploaded instead. */
const maxInlineBytes = 1024 * 1024;

export function parseInputSpec(spec: string): InputSpec {
  const match = /^([^.=\s]+\.[^.=\s]+)=([\s\S]*)$/.exec(spec);
  if (!match) {
    throw new CliError(`--input "${spec}" must look like node.pin=@file, node.pin=ref:<id> or node.pin=text`, ExitCode.usage);
  }
  const [, key = "", value = ""] = match;
  if (value.startsWith("@")) return { key, source: { kind: "file", value: value.slice(1) } };
  if (value.startsWith("ref:")) return { key, source: { kind: "ref", value: value.slice(4) } };
  return { key, source: { kind: "literal", value } };
}

/**
 * Turns `--input` flags into pin values, shaped by each pin's declared type (read from the registry):
 * a file for a text pin is sent as text, for a JSON pin as JSON, for media pins it is uploaded and sent
 * as a MediaRef. Pins the CLI cannot find a type for are left for the server to judge: files are
 * uploaded, literals are text.
 */
export async function resolveInputs(
  ctx: CommandContext,
  specs: readonly InputSpec[],
  nodes: readonly FlowNodeAgent[],
  uploadTemp: boolean,
): Promise<Record<string, PinValueInit>> {
  const seen = new Set<string>();
  for (const spec of specs) {
    if (seen.has(spec.key)) throw new CliError(`--input ${spec.key} is given twice`, ExitCode.usage);
    seen.add(spec.key);
  }
  const types = await pinTypes(ctx, nodes);
  const inputs: Record<string, PinValueInit> = {};
  for (const spec of specs) {
    inputs[spec.key] = await resolveInput(ctx, spec, types.get(spec.key), uploadTemp);
  }
  return inputs;
}

async function resolveInput(ctx: CommandContext, spec: InputSpec, type: PinType | undefined, uploadTemp: boolean): Promise<PinValueInit> {
  const { kind, value } = spec.source;
  if (kind === "ref") return media(await statRef(ctx, value));
  if (kind === "file") {
    if (type === PinType.TEXT || type === PinType.JSON) return literal(spec.key, await readSmallFile(ctx, value), type);
    if (type === PinType.STREAM) throw new CliError(`${spec.key} is a stream pin: it can only be fed by an edge`, ExitCode.usage);
    return media((await uploadFile(ctx, value, { temp: uploadTemp })).ref);
  }
  if (isMediaPin(type) || type === PinType.STREAM) {
    throw new CliError(`${spec.key} is an ${enumLabel(PinTypeSchema, type)} pin: pass @file or ref:<id>, not text`, ExitCode.usage);
  }
  return literal(spec.key, value, type);
}

function literal(key: string, text: string, type: PinType | undefined): PinValueInit {
  if (type === PinType.JSON) {
    let parsed: JsonValue;
    try {
      parsed = JSON.parse(text) as JsonValue;
    } catch (err) {
      throw new CliError(`${key} is a json pin but its value is not JSON: ${(err as Error).message}`, ExitCode.usage);
    }
    return { value: { case: "json", value: fromJson(ValueSchema, parsed) } };
  }
  if (type === PinType.BINARY) return { value: { case: "inlineBytes", value: new TextEncoder().encode(text) } };
  return { value: { case: "text", value: text } };
}

function media(ref: MediaRef): PinValueInit {
  return { value: { case: "media", value: ref } };
}

async function statRef(ctx: CommandContext, refId: string): Promise<MediaRef> {
  const { ref } = await ctx.clients.storage.stat({ refId });
  if (!ref) throw new CliError(`server returned no MediaRef for ${refId}`);
  return ref;
}

async function readSmallFile(ctx: CommandContext, file: string): Promise<string> {
  const path = resolve(ctx.io.cwd, file);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new CliError(`${file} is not a readable file`);
  if (info.size > maxInlineBytes) throw new CliError(`${file} is larger than 1 MiB: too big to pass inline on a text or json pin`);
  return readFile(path, "utf8");
}

/** `nodeId.pin` → declared type, for the nodes whose agents the registry knows. */
async function pinTypes(ctx: CommandContext, nodes: readonly FlowNodeAgent[]): Promise<Map<string, PinType>> {
  const types = new Map<string, PinType>();
  for (const node of nodes) {
    const agent = await ctx.clients.registry.getAgent({ id: node.agent, version: exactVersion(node.version) }).then(
      (res) => res.agent,
      (err: unknown) => {
        if (ConnectError.from(err).code === Code.NotFound) return undefined;
        throw err;
      },
    );
    // A mapped pin takes a json list of its type's values.
    for (const pin of agent?.inputs ?? []) types.set(`${node.nodeId}.${pin.name}`, pin.name === node.mappedPin ? PinType.JSON : pin.type);
  }
  return types;
}

// A node may name a semver range, which GetAgent does not take: the newest version then stands in.
function exactVersion(version: string): string {
  return /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$/.test(version) ? version : "";
}
