import { createHash } from "node:crypto";
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { PinType, type PinValue } from "../../gen/mentatlab/v1/common_pb.js";
import { CacheMode } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { canonicalJson } from "./canonical-json.js";
import type { PlannedNode } from "./flow-validate.js";

/** Bumped when what goes into a key changes, so entries written under the old rules are never read. */
const keyVersion = 2;

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/**
 * What an input value contributes to a key: the sha256 of its content. Bytes hash the same inline or
 * stored (a MediaRef by its sha256, never its id), since an agent gets the same bytes either way. A
 * stream has no content yet, and a MediaRef without a digest cannot be compared: neither can be keyed.
 */
export function pinValueDigest(value: PinValue): string | undefined {
  switch (value.value.case) {
    case "text":
      return `text:${sha256(value.value.value)}`;
    case "json":
      return `json:${sha256(canonicalJson(toJson(ValueSchema, value.value.value)))}`;
    case "inlineBytes":
      return `bytes:${sha256(value.value.value)}`;
    case "media":
      return value.value.value.sha256 ? `bytes:${value.value.value.sha256.toLowerCase()}` : undefined;
    default:
      return undefined;
  }
}

/**
 * A node's cache key: its agent (id@version, its image, which pins a digest when written
 * `name@sha256:…`, and how it is started: runtime, command, working directory and environment, since
 * registering a manifest again under the same version replaces them), its parameters as canonical JSON,
 * and the digest of every input value by pin.
 * Undefined when the node must run: its agent is not `cacheable`, it has a stream input or output
 * (live data cannot be replayed), or an input cannot be keyed.
 */
export function nodeCacheKey(planned: PlannedNode, inputs: Readonly<Record<string, PinValue | undefined>>): string | undefined {
  const { manifest } = planned;
  if (
    !manifest.cacheable ||
    manifest.outputs.some((p) => p.type === PinType.STREAM) ||
    manifest.inputs.some((p) => p.type === PinType.STREAM && planned.inputs.has(p.name))
  ) {
    return undefined;
  }
  const digests: Record<string, string> = {};
  for (const [pin, value] of Object.entries(inputs)) {
    if (!value) continue;
    const digest = pinValueDigest(value);
    if (!digest) return undefined;
    digests[pin] = digest;
  }
  const params = planned.node.params ?? {};
  const start = { runtime: manifest.runtime, command: manifest.command, workingDir: manifest.workingDir, env: manifest.env };
  return sha256(canonicalJson({ v: keyVersion, agent: `${manifest.id}@${manifest.version}`, image: manifest.image, start, params, inputs: digests }));
}

/** Whether a run in `mode` takes outputs from the cache, and whether it stores the outputs of nodes that ran. */
export function cacheUse(mode: CacheMode): { read: boolean; write: boolean } {
  return {
    read: mode === CacheMode.UNSPECIFIED || mode === CacheMode.READ_WRITE || mode === CacheMode.READ,
    write: mode === CacheMode.UNSPECIFIED || mode === CacheMode.READ_WRITE || mode === CacheMode.WRITE,
  };
}
